/**
 * Checking a client's identity token on the native protocol, as keystonemiddleware checks one for
 * an OpenStack service: the share server asks the identity service (`GET {authUrl}/auth/tokens`,
 * the token validating itself, as Keystone allows its holder to) and remembers the answer for
 * `recheckMs`. The identity service verifies the signature with its signing keys and applies its
 * revocation events, so a revoked token, a disabled user or a removed role reaches the data path
 * within `recheckMs` of the change, with no keys or revocation lists copied to the share servers.
 *
 * When the identity service cannot be reached, a token that was valid keeps its last answer until
 * it expires (a restart of the API does not stop running mounts); a token never seen is refused.
 */
import { ReplicatedError } from '../protocol/errors.ts';

/** What a valid token says about its holder. */
export interface TokenFacts {
  userId: string;
  /** The project the token is scoped to (null for an unscoped or domain token). */
  projectId: string | null;
  isAdmin: boolean;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

type Answer = { facts: TokenFacts; at: number } | { refused: string; at: number };

export interface TokenCheckerOptions {
  /** The identity API, e.g. http://127.0.0.1:8786/identity/v3. */
  authUrl: string;
  /** How long an answer stands before the token is asked about again (default 5 s). */
  recheckMs?: number;
  /** Per request to the identity service (default 5 s). */
  timeoutMs?: number;
  /** Tokens remembered at most (the least recently checked goes first). */
  maxEntries?: number;
}

export class TokenChecker {
  private readonly answers = new Map<string, Answer>();
  private readonly inFlight = new Map<string, Promise<Answer>>();
  private readonly url: string;
  readonly recheckMs: number;

  constructor(private readonly opts: TokenCheckerOptions) {
    this.url = `${opts.authUrl.replace(/\/+$/, '')}/auth/tokens`;
    this.recheckMs = opts.recheckMs ?? 5000;
  }

  /**
   * The standing answer for a token if it is fresh: its facts, or the reason it is refused (as a
   * ReplicatedError to throw). Undefined when the identity service must be asked (check()).
   */
  fresh(token: string, now = Date.now()): TokenFacts | ReplicatedError | undefined {
    const a = this.answers.get(token);
    if (!a || now - a.at >= this.recheckMs) return undefined;
    if ('refused' in a) return refusal(a.refused);
    if (now >= a.facts.expiresAt) return refusal('the token has expired');
    return a.facts;
  }

  /** Asks the identity service (at most one request per token at a time); throws EACCES if refused. */
  async check(token: string): Promise<TokenFacts> {
    const cached = this.fresh(token);
    if (cached instanceof ReplicatedError) throw cached;
    if (cached) return cached;
    let pending = this.inFlight.get(token);
    if (!pending) {
      pending = this.ask(token).finally(() => this.inFlight.delete(token));
      this.inFlight.set(token, pending);
    }
    const a = await pending;
    if ('refused' in a) throw refusal(a.refused);
    return a.facts;
  }

  private async ask(token: string): Promise<Answer> {
    const previous = this.answers.get(token);
    let answer: Answer;
    try {
      answer = await this.validate(token);
    } catch (err) {
      // Unreachable or failing identity service: a token known good stays good until it expires.
      if (previous && 'facts' in previous && Date.now() < previous.facts.expiresAt) {
        const kept = { facts: previous.facts, at: Date.now() };
        this.remember(token, kept);
        return kept;
      }
      return { refused: `the identity service could not check the token (${(err as Error).message})`, at: 0 };
    }
    this.remember(token, answer);
    return answer;
  }

  private async validate(token: string): Promise<Answer> {
    if (token === '' || token.length > 8192 || /[^\x21-\x7e]/.test(token))
      return { refused: 'the token is malformed', at: Date.now() };
    const res = await fetch(this.url, {
      headers: { 'X-Auth-Token': token, 'X-Subject-Token': token, Accept: 'application/json' },
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
    });
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      await res.body?.cancel();
      return { refused: 'the token is invalid, expired or revoked', at: Date.now() };
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    const body = (await res.json()) as { token?: Record<string, unknown> };
    const t = body.token ?? {};
    const expiresAt = Date.parse(String(t['expires_at']));
    const user = t['user'] as { id?: unknown } | undefined;
    const project = t['project'] as { id?: unknown } | undefined;
    const roles = Array.isArray(t['roles']) ? (t['roles'] as Array<{ name?: unknown }>) : [];
    if (!Number.isFinite(expiresAt) || typeof user?.id !== 'string')
      throw new Error('the identity service answered without expires_at or user');
    return {
      facts: {
        userId: user.id,
        projectId: typeof project?.id === 'string' ? project.id : null,
        isAdmin: roles.some((r) => r.name === 'admin'),
        expiresAt,
      },
      at: Date.now(),
    };
  }

  private remember(token: string, answer: Answer): void {
    this.answers.delete(token);
    if (this.answers.size >= (this.opts.maxEntries ?? 10_000))
      this.answers.delete(this.answers.keys().next().value as string);
    this.answers.set(token, answer);
  }
}

const refusal = (why: string) => new ReplicatedError('EACCES', why);
