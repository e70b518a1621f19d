/**
 * One HTTP request over the global fetch (Node 20), with OpenStack's error handling: a fault body
 * becomes an ApiError carrying the message, the status and x-openstack-request-id; a server that
 * cannot be reached becomes a ConnectionError.
 */
import { ApiError, ConnectionError } from './errors.ts';

export type QueryValue = string | number | boolean | null | undefined;
export type Query = Record<string, QueryValue>;

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** Sent as JSON when defined. */
  body?: unknown;
  query?: Query;
  /** Per-request timeout; default 60 s. */
  timeoutMs?: number;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON, or null for an empty or non-JSON body. */
  body: T;
  requestId: string | null;
}

/** Called once per request, after it finished or failed: for `--debug` output. */
export type HttpTrace = (event: {
  method: string;
  url: string;
  status: number | null;
  ms: number;
  requestId: string | null;
}) => void;

export const USER_AGENT = 'abaca-client';

export function withQuery(url: string, query: Query | undefined): string {
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.append(k, String(v));
  const qs = params.toString();
  if (!qs) return url;
  return `${url}${url.includes('?') ? '&' : '?'}${qs}`;
}

/** The message of a Manila (`{"itemNotFound": {"message"}}`) or Keystone (`{"error": …}`) fault. */
function faultOf(body: unknown): { fault: string; message: string } | null {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return null;
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (value && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string')
      return { fault: key, message: (value as { message: string }).message };
  }
  return null;
}

function connectionError(err: unknown, method: string, url: string, timeoutMs: number): ConnectionError {
  const origin = (() => {
    try {
      return new URL(url).origin;
    } catch {
      return url;
    }
  })();
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError')
    return new ConnectionError(
      `no answer from ${origin} within ${Math.round(timeoutMs / 1000)} s (${method} ${url})`,
      url,
      'ETIMEDOUT',
    );
  const code = e?.cause?.code ?? null;
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'unknown host'
        : code === 'ECONNRESET'
          ? 'connection reset'
          : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
            ? 'host unreachable'
            : (e?.cause?.message ?? e?.message ?? String(err));
  return new ConnectionError(`could not connect to ${origin} (${why})`, url, code);
}

export async function httpRequest<T = unknown>(
  req: HttpRequest,
  trace?: HttpTrace,
): Promise<HttpResponse<T>> {
  const url = withQuery(req.url, req.query);
  const timeoutMs = req.timeoutMs ?? 60_000;
  const headers: Record<string, string> = {
    Accept: 'application/json',
    'User-Agent': USER_AGENT,
    ...req.headers,
  };
  if (req.body !== undefined) headers['Content-Type'] = 'application/json';
  const started = Date.now();
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method,
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    trace?.({ method: req.method, url, status: null, ms: Date.now() - started, requestId: null });
    throw connectionError(err, req.method, url, timeoutMs);
  }
  const requestId = res.headers.get('x-openstack-request-id') ?? res.headers.get('x-compute-request-id');
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw connectionError(err, req.method, url, timeoutMs);
  }
  trace?.({ method: req.method, url, status: res.status, ms: Date.now() - started, requestId });
  const isJson = (res.headers.get('content-type') ?? '').toLowerCase().includes('json');
  let body: unknown = null;
  if (text && isJson) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (res.status >= 400) {
    const f = faultOf(body);
    const fallback = text && !isJson ? text.trim().split('\n')[0]!.slice(0, 300) : res.statusText;
    throw new ApiError(
      f?.message ?? (fallback || `HTTP ${res.status}`),
      res.status,
      requestId,
      f?.fault ?? null,
      req.method,
      url,
    );
  }
  return { status: res.status, headers: res.headers, body: body as T, requestId };
}
