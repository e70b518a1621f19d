/**
 * Keystone v3 authentication and the service catalog, like a keystoneauth Session: password,
 * application-credential or token auth; a token is reused (optionally across processes through a
 * TokenCache) until shortly before it expires, and requests that meet a 401 with a cached token
 * authenticate once more and retry.
 */
import { createHash } from 'node:crypto';
import { findEndpoint } from './catalog.ts';
import { ApiError, ClientError } from './errors.ts';
import { type HttpResponse, type HttpTrace, httpRequest, type Query, type TlsOptions } from './http.ts';
import type { TokenCache } from './token-cache.ts';
import type { CatalogEntry, TokenBody } from './types.ts';

/** A domain by id or by name. */
export interface DomainRef {
  id?: string;
  name?: string;
}

export interface ProjectScope {
  id?: string;
  name?: string;
  domain?: DomainRef;
}

export interface PasswordCredentials {
  type: 'password';
  authUrl: string;
  username?: string;
  userId?: string;
  userDomain?: DomainRef;
  password: string;
  /** Without a project the token is scoped to the user's default project, if any. */
  project?: ProjectScope;
}

export interface ApplicationCredentialCredentials {
  type: 'application_credential';
  authUrl: string;
  /** The credential's id, or its name together with the user's. */
  id?: string;
  name?: string;
  username?: string;
  userId?: string;
  userDomain?: DomainRef;
  secret: string;
}

export interface TokenCredentials {
  type: 'token';
  token: string;
  /** Keystone, where the token is looked up to find its catalog and project. */
  authUrl?: string;
}

export type Credentials = PasswordCredentials | ApplicationCredentialCredentials | TokenCredentials;

/** What the client knows about its token. Stored as is by a TokenCache. */
export interface AuthInfo {
  token: string;
  /** ISO time; null for a token whose expiry is unknown (a static admin token). */
  expiresAt: string | null;
  userId: string | null;
  userName: string | null;
  projectId: string | null;
  projectName: string | null;
  roles: string[];
  methods: string[];
  catalog: CatalogEntry[];
}

export interface SessionOptions {
  credentials: Credentials;
  region?: string | null;
  /** Endpoint interface to pick from the catalog; default `public`. */
  interface?: string;
  /** Share API URL to use instead of the catalog's (required with a token and no authUrl). */
  shareEndpoint?: string | null;
  /** Identity v3 URL to use instead of the discovered / catalog one. */
  identityEndpoint?: string | null;
  cache?: TokenCache | null;
  /** Per-request timeout; default 60 s. */
  timeoutMs?: number;
  /** CA bundle / --insecure for HTTPS endpoints; default: Node's bundled CAs. */
  tls?: TlsOptions;
  trace?: HttpTrace;
}

/** The auth URL does not lead to a Keystone v3 service. */
export class AuthUrlError extends ClientError {
  override readonly name = 'AuthUrlError';
  constructor(
    message: string,
    readonly authUrl: string,
  ) {
    super(message);
  }
}

/** A token is reused until this long before it expires. */
const EXPIRY_MARGIN_MS = 60_000;

/** Service types under which the share API may be published (manilaclient looks up `sharev2`). */
export const SHARE_SERVICE_TYPES = ['sharev2', 'shared-file-system'] as const;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
}

export class Session {
  private info: AuthInfo | null = null;
  private infoFromCache = false;
  private identity: string | null = null;
  readonly cacheKey: string;

  constructor(readonly options: SessionOptions) {
    this.cacheKey = fingerprint(options.credentials);
  }

  get credentials(): Credentials {
    return this.options.credentials;
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs ?? 60_000;
  }

  /** The identity v3 URL: given, discovered from the auth URL, or from the catalog. */
  async identityUrl(): Promise<string> {
    if (this.options.identityEndpoint) return this.options.identityEndpoint.replace(/\/+$/, '');
    if (this.identity) return this.identity;
    const authUrl = 'authUrl' in this.credentials ? this.credentials.authUrl : undefined;
    if (authUrl) {
      this.identity = await this.discover(authUrl);
      return this.identity;
    }
    const info = await this.auth();
    const fromCatalog = findEndpoint(info.catalog, ['identity'], this.options.interface, this.options.region);
    if (!fromCatalog)
      throw new ClientError('No identity endpoint is known: give an auth URL or an identity endpoint.');
    this.identity = fromCatalog;
    return fromCatalog;
  }

  /** The share API URL: given, or the catalog's `sharev2` (else `shared-file-system`) endpoint. */
  async shareUrl(): Promise<string> {
    if (this.options.shareEndpoint) return this.options.shareEndpoint.replace(/\/+$/, '');
    const info = await this.auth();
    const url = findEndpoint(info.catalog, SHARE_SERVICE_TYPES, this.options.interface, this.options.region);
    if (!url) {
      const where = [
        `interface ${this.options.interface ?? 'public'}`,
        ...(this.options.region ? [`region ${this.options.region}`] : []),
      ].join(', ');
      throw new ClientError(
        `No share service (${SHARE_SERVICE_TYPES.join(' or ')}, ${where}) in the service catalog.`,
      );
    }
    return url;
  }

  /**
   * Finds the v3 API under an auth URL: a URL ending in /v3 is used as is; otherwise its version
   * document (`GET /` → 300 with `versions.values`, or 200 with `version`) names the v3 `self` link.
   */
  private async discover(authUrl: string): Promise<string> {
    const base = authUrl.replace(/\/+$/, '');
    if (/\/v3$/.test(base)) return base;
    let res: HttpResponse<unknown>;
    try {
      res = await httpRequest(
        { method: 'GET', url: base, timeoutMs: this.timeoutMs, tls: this.options.tls },
        this.options.trace,
      );
    } catch (err) {
      if (err instanceof ApiError)
        throw new AuthUrlError(
          `${base} is not a Keystone endpoint (GET answered HTTP ${err.status}).`,
          authUrl,
        );
      throw err;
    }
    const body = res.body as {
      version?: { id?: string; links?: { rel: string; href: string }[] };
      versions?: { values?: unknown[] } | unknown[];
    } | null;
    const candidates: unknown[] = [];
    if (body?.version) candidates.push(body.version);
    if (Array.isArray(body?.versions)) candidates.push(...body.versions);
    else if (body?.versions && Array.isArray(body.versions.values)) candidates.push(...body.versions.values);
    for (const v of candidates as { id?: string; links?: { rel: string; href: string }[] }[]) {
      if (!v?.id?.startsWith('v3')) continue;
      const self = v.links?.find((l) => l.rel === 'self')?.href;
      if (self) return self.replace(/\/+$/, '');
    }
    throw new AuthUrlError(`${base} does not offer the Keystone v3 API.`, authUrl);
  }

  /** The current token: from memory, the cache, or a new one from Keystone. */
  async auth(): Promise<AuthInfo> {
    if (this.info && usable(this.info)) return this.info;
    const cached = this.options.cache?.get(this.cacheKey);
    if (cached && usable(cached)) {
      this.info = cached;
      this.infoFromCache = true;
      return cached;
    }
    return this.authenticate();
  }

  /** Always asks Keystone (or, for a bare token with an endpoint, trusts it as given). */
  async authenticate(): Promise<AuthInfo> {
    const info = await this.obtain();
    this.info = info;
    this.infoFromCache = false;
    if (info.expiresAt) this.options.cache?.set(this.cacheKey, info);
    return info;
  }

  /** Forgets the token (here and in the cache), so the next request authenticates again. */
  invalidate(): void {
    this.info = null;
    this.options.cache?.delete(this.cacheKey);
  }

  private async obtain(): Promise<AuthInfo> {
    const c = this.credentials;
    if (c.type === 'token') {
      // With an endpoint, the token is used as is (Keystone's admin_token / OSC's --os-endpoint).
      if (this.options.shareEndpoint || !c.authUrl) {
        if (!this.options.shareEndpoint)
          throw new ClientError('A token needs either an auth URL or a share endpoint.');
        return {
          token: c.token,
          expiresAt: null,
          userId: null,
          userName: null,
          projectId: null,
          projectName: null,
          roles: [],
          methods: ['token'],
          catalog: [],
        };
      }
      const url = await this.identityUrl();
      const res = await this.keystone<TokenBody>(
        {
          method: 'GET',
          url: `${url}/auth/tokens`,
          headers: { 'X-Auth-Token': c.token, 'X-Subject-Token': c.token },
        },
        url,
      );
      return toInfo(c.token, res.body);
    }
    const url = await this.identityUrl();
    const res = await this.keystone<TokenBody>(
      { method: 'POST', url: `${url}/auth/tokens`, body: authBody(c) },
      url,
    );
    const token = res.headers.get('x-subject-token');
    if (!token)
      throw new AuthUrlError(
        `${url} did not answer like Keystone v3 (no X-Subject-Token in the answer to POST /auth/tokens).`,
        c.authUrl,
      );
    return toInfo(token, res.body);
  }

  /** A Keystone call where a 404/405 or a body without `token` means the URL is wrong. */
  private async keystone<T>(
    req: { method: string; url: string; headers?: Record<string, string>; body?: unknown },
    identityUrl: string,
  ): Promise<HttpResponse<T>> {
    let res: HttpResponse<T>;
    try {
      res = await httpRequest<T>(
        { ...req, timeoutMs: this.timeoutMs, tls: this.options.tls },
        this.options.trace,
      );
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405))
        throw new AuthUrlError(
          `No Keystone v3 service at ${identityUrl}: ${req.method} ${identityUrl}/auth/tokens answered HTTP ${err.status}.`,
          identityUrl,
        );
      throw err;
    }
    if (!res.body || typeof (res.body as { token?: unknown }).token !== 'object')
      throw new AuthUrlError(
        `${identityUrl} did not answer like Keystone v3 (no token in the body).`,
        identityUrl,
      );
    return res;
  }

  /**
   * A request to a service with the token; a 401 with a token that came from the cache (revoked
   * or cut short since) authenticates once more and retries.
   */
  async request<T = unknown>(
    service: 'share' | 'identity',
    method: string,
    path: string,
    opts: RequestOptions = {},
    extraHeaders: Record<string, string> = {},
  ): Promise<HttpResponse<T>> {
    const url = /^https?:\/\//.test(path)
      ? path
      : `${service === 'share' ? await this.shareUrl() : await this.identityUrl()}${path}`;
    const send = (info: AuthInfo) =>
      httpRequest<T>(
        {
          method,
          url,
          query: opts.query,
          body: opts.body,
          headers: { ...extraHeaders, ...opts.headers, 'X-Auth-Token': info.token },
          timeoutMs: this.timeoutMs,
          tls: this.options.tls,
        },
        this.options.trace,
      );
    const info = await this.auth();
    try {
      return await send(info);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && this.infoFromCache) {
        this.invalidate();
        return send(await this.authenticate());
      }
      throw err;
    }
  }
}

function usable(info: AuthInfo): boolean {
  if (!info.expiresAt) return true;
  return Date.parse(info.expiresAt) - Date.now() > EXPIRY_MARGIN_MS;
}

function userRef(c: { username?: string; userId?: string; userDomain?: DomainRef }) {
  if (c.userId) return { id: c.userId };
  if (!c.username) throw new ClientError('A user name or user id is required.');
  return { name: c.username, domain: domainRef(c.userDomain) };
}

function domainRef(d: DomainRef | undefined): DomainRef {
  if (d?.id) return { id: d.id };
  if (d?.name) return { name: d.name };
  return { id: 'default' };
}

function authBody(c: PasswordCredentials | ApplicationCredentialCredentials) {
  if (c.type === 'password') {
    const identity = { methods: ['password'], password: { user: { ...userRef(c), password: c.password } } };
    if (!c.project || (!c.project.id && !c.project.name)) return { auth: { identity } };
    const project = c.project.id
      ? { id: c.project.id }
      : { name: c.project.name, domain: domainRef(c.project.domain) };
    return { auth: { identity, scope: { project } } };
  }
  if (!c.id && !c.name) throw new ClientError('An application credential id or name is required.');
  const credential = c.id
    ? { id: c.id, secret: c.secret }
    : { name: c.name, secret: c.secret, user: userRef(c) };
  return {
    auth: { identity: { methods: ['application_credential'], application_credential: credential } },
  };
}

function toInfo(token: string, body: TokenBody): AuthInfo {
  const t = body.token;
  return {
    token,
    expiresAt: t.expires_at ?? null,
    userId: t.user?.id ?? null,
    userName: t.user?.name ?? null,
    projectId: t.project?.id ?? null,
    projectName: t.project?.name ?? null,
    roles: (t.roles ?? []).map((r) => r.name),
    methods: t.methods ?? [],
    catalog: t.catalog ?? [],
  };
}

/** A cache key for credentials: a hash, so the cache file holds no password or secret. */
export function fingerprint(c: Credentials): string {
  const canonical = JSON.stringify(c, Object.keys(flatten(c)).sort());
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}

function flatten(o: unknown, acc: Record<string, true> = {}): Record<string, true> {
  if (o && typeof o === 'object')
    for (const [k, v] of Object.entries(o)) {
      acc[k] = true;
      flatten(v, acc);
    }
  return acc;
}
