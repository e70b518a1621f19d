/**
 * One HTTP request over node:http / node:https with a keep-alive agent, with OpenStack's error
 * handling: a fault body becomes an ApiError carrying the message, the status and
 * x-openstack-request-id; a server that cannot be reached (refused, timed out, a certificate not
 * trusted) becomes a ConnectionError. Not the global fetch: on Node 20 its first call loads undici,
 * which costs a short-lived CLI run more than the request itself.
 */
import http from 'node:http';
import https from 'node:https';
import { ApiError, ConnectionError } from './errors.ts';

export type QueryValue = string | number | boolean | null | undefined;
export type Query = Record<string, QueryValue>;

/** How HTTPS servers are verified: python-openstackclient's --os-cacert and --insecure. */
export interface TlsOptions {
  /** PEM CA certificates trusted instead of Node's bundled ones (the contents of OS_CACERT). */
  ca?: string;
  /** Accept any certificate (--insecure): for test setups only. */
  insecure?: boolean;
}

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** Sent as JSON when defined. */
  body?: unknown;
  query?: Query;
  /** Limit on the whole exchange, the answer's body included; default 60 s. */
  timeoutMs?: number;
  tls?: TlsOptions;
}

/** The answer's headers, looked up case-insensitively (like fetch's Headers). */
export interface ResponseHeaders {
  get(name: string): string | null;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: ResponseHeaders;
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

/** Certificate errors of node:tls, in words; every one is a ConnectionError with a hint. */
const TLS_WHY: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'its certificate chain ends in an untrusted self-signed CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its certificate is signed by an unknown CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its certificate is signed by an unknown CA',
  UNABLE_TO_GET_ISSUER_CERT: 'its certificate is signed by an unknown CA',
  CERT_HAS_EXPIRED: 'its certificate has expired',
  CERT_NOT_YET_VALID: 'its certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate is for another host name',
};

/** An error raised when the whole exchange took longer than its limit. */
class Timeout extends Error {
  override readonly name = 'TimeoutError';
}

function connectionError(err: unknown, method: string, url: string, timeoutMs: number): ConnectionError {
  const origin = (() => {
    try {
      return new URL(url).origin;
    } catch {
      return url;
    }
  })();
  if (err instanceof Timeout)
    return new ConnectionError(
      `no answer from ${origin} within ${Math.round(timeoutMs / 1000)} s (${method} ${url})`,
      url,
      'ETIMEDOUT',
    );
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? null;
  if (code && code in TLS_WHY)
    return new ConnectionError(
      `could not connect to ${origin} (TLS: ${TLS_WHY[code]}; trust its CA with --os-cacert / OS_CACERT, or skip verification with --insecure)`,
      url,
      code,
    );
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'unknown host'
        : code === 'ECONNRESET'
          ? 'connection reset'
          : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
            ? 'host unreachable'
            : (e?.message ?? String(err));
  return new ConnectionError(`could not connect to ${origin} (${why})`, url, code);
}

// Keep-alive agents: the token request and the API call of one command share a connection. Idle
// sockets do not keep the process alive (Node unrefs them) and are dropped before a server's
// usual 5 s keep-alive timeout would close them under a request.
const AGENT_OPTIONS = { keepAlive: true, timeout: 4_000 } as const;
const httpAgent = new http.Agent(AGENT_OPTIONS);
const httpsAgents = new Map<string, https.Agent>();

function httpsAgent(tls: TlsOptions | undefined): https.Agent {
  const key = `${tls?.insecure ? 'insecure' : 'verify'}\n${tls?.ca ?? ''}`;
  let agent = httpsAgents.get(key);
  if (!agent) {
    agent = new https.Agent({
      ...AGENT_OPTIONS,
      ...(tls?.ca ? { ca: tls.ca } : {}),
      rejectUnauthorized: !tls?.insecure,
    });
    httpsAgents.set(key, agent);
  }
  return agent;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

interface RawResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** Sends once; rejects with the socket's error or a Timeout, resolves once the body is read. */
function exchange(
  target: URL,
  method: string,
  headers: Record<string, string>,
  payload: string | undefined,
  timeoutMs: number,
  tls: TlsOptions | undefined,
): Promise<RawResponse & { reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const secure = target.protocol === 'https:';
    if (!secure && target.protocol !== 'http:') {
      reject(new Error(`unsupported URL scheme ${target.protocol}`));
      return;
    }
    const req = (secure ? https : http).request(target, {
      method,
      headers,
      agent: secure ? httpsAgent(tls) : httpAgent,
    });
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(Object.assign(err as object, { reusedSocket: req.reusedSocket }));
    };
    const timer = setTimeout(() => {
      const err = new Timeout('timed out');
      fail(err);
      req.destroy(err);
    }, timeoutMs);
    req.once('error', fail);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', fail);
      res.once('aborted', () => fail(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' })));
      res.once('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
          reusedSocket: req.reusedSocket,
        });
      });
    });
    req.end(payload);
  });
}

function headerGetter(headers: http.IncomingHttpHeaders): ResponseHeaders {
  return {
    get(name: string): string | null {
      const v = headers[name.toLowerCase()];
      if (v === undefined) return null;
      return Array.isArray(v) ? v.join(', ') : v;
    },
  };
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
  const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
  if (payload !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(payload));
  }
  const started = Date.now();
  let raw: RawResponse;
  try {
    const target = new URL(url);
    try {
      raw = await exchange(target, req.method, headers, payload, timeoutMs, req.tls);
    } catch (err) {
      // A kept-alive connection the server closed just as it was reused: send again on a new one,
      // as browsers do, when sending twice cannot do anything twice.
      const e = err as { code?: string; reusedSocket?: boolean };
      if (!(e.reusedSocket && e.code === 'ECONNRESET' && IDEMPOTENT.has(req.method.toUpperCase()))) throw err;
      raw = await exchange(target, req.method, headers, payload, timeoutMs, req.tls);
    }
  } catch (err) {
    trace?.({ method: req.method, url, status: null, ms: Date.now() - started, requestId: null });
    throw connectionError(err, req.method, url, timeoutMs);
  }
  const res = { ...raw, headers: headerGetter(raw.headers) };
  const requestId = res.headers.get('x-openstack-request-id') ?? res.headers.get('x-compute-request-id');
  const { text } = res;
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
