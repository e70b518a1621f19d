/**
 * What every command gets: lazily built clients (no auth until a command needs it), name-or-id
 * lookups as the OpenStack clients do them, and `--wait` with a spinner on stderr.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Spinner } from 'nanospinner';
import {
  AmbiguousName,
  ApiError,
  FileTokenCache,
  IdentityClient,
  isNotFound,
  type PollOptions,
  ResourceNotFound,
  Session,
  type Share,
  ShareClient,
  type ShareType,
  type Snapshot,
  type TlsOptions,
  type WaitOutcome,
} from './client/index.ts';
import { type GlobalOptions, type ResolvedConfig, resolveConfig } from './config.ts';
import { CommandError, EXIT, UsageError } from './errors.ts';

const require = createRequire(import.meta.url);

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function looksLikeId(s: string): boolean {
  return UUID.test(s);
}

export interface WaitFlags {
  wait?: boolean;
  timeout?: string;
}

/** `--timeout` in seconds (default 900, as the manila client), as milliseconds. */
export function timeoutMs(flags: WaitFlags): number {
  if (flags.timeout === undefined) return 900_000;
  const n = Number(flags.timeout);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError('--timeout must be a positive number of seconds.');
  return Math.round(n * 1000);
}

export class Context {
  private resolved: ResolvedConfig | null = null;
  private sessionInstance: Session | null = null;
  private shareClient: ShareClient | null = null;
  private identityClient: IdentityClient | null = null;

  constructor(
    readonly globals: GlobalOptions,
    readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  get config(): ResolvedConfig {
    this.resolved ??= resolveConfig(this.globals, this.env);
    return this.resolved;
  }

  get session(): Session {
    if (!this.sessionInstance) {
      const c = this.config;
      const httpTimeout = this.globals.httpTimeout === undefined ? 60 : Number(this.globals.httpTimeout);
      if (!Number.isFinite(httpTimeout) || httpTimeout <= 0)
        throw new UsageError('--http-timeout must be a positive number of seconds.');
      this.sessionInstance = new Session({
        credentials: c.credentials,
        region: c.region,
        interface: c.interface,
        shareEndpoint: c.shareEndpoint,
        identityEndpoint: c.identityEndpoint,
        cache: this.globals.tokenCache === false ? null : new FileTokenCache(),
        tls: this.tls(),
        timeoutMs: httpTimeout * 1000,
        ...(this.globals.debug
          ? {
              trace: (e) =>
                this.debug(
                  `${e.method} ${e.url} → ${e.status ?? 'no answer'} in ${e.ms} ms${e.requestId ? ` (${e.requestId})` : ''}`,
                ),
            }
          : {}),
      });
    }
    return this.sessionInstance;
  }

  /** The CA bundle's contents (read once, with a clear error) and --insecure. */
  private tls(): TlsOptions {
    const { caFile, caFileSource, insecure } = this.config.tls;
    if (!caFile) return { insecure };
    let ca: string;
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new CommandError(
        `Cannot read the CA bundle ${caFile} (from ${caFileSource ?? 'OS_CACERT'}): ${(err as Error).message}`,
      );
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----'))
      throw new CommandError(
        `The CA bundle ${caFile} (from ${caFileSource ?? 'OS_CACERT'}) holds no PEM certificate.`,
      );
    return { ca, insecure };
  }

  get shares(): ShareClient {
    this.shareClient ??= new ShareClient(this.session, this.config.microversion);
    return this.shareClient;
  }

  get identity(): IdentityClient {
    this.identityClient ??= new IdentityClient(this.session);
    return this.identityClient;
  }

  debug(line: string): void {
    if (this.globals.debug) process.stderr.write(`DEBUG ${line}\n`);
  }

  warn(line: string): void {
    process.stderr.write(`${line}\n`);
  }

  // ---- lookups: an id goes straight to GET; otherwise (or on 404) the list is searched by name ----

  async findShare(nameOrId: string): Promise<Share> {
    let notFound: unknown = null;
    if (looksLikeId(nameOrId)) {
      try {
        return await this.shares.getShare(nameOrId);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        notFound = err;
      }
    }
    const rows = await this.shares.listShares({ name: nameOrId });
    return this.one('share', nameOrId, rows, notFound);
  }

  async findSnapshot(nameOrId: string): Promise<Snapshot> {
    let notFound: unknown = null;
    if (looksLikeId(nameOrId)) {
      try {
        return await this.shares.getSnapshot(nameOrId);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        notFound = err;
      }
    }
    const rows = (await this.shares.listSnapshots({ name: nameOrId })).filter(
      (s) => s.name === nameOrId || s.id === nameOrId,
    );
    return this.one('snapshot', nameOrId, rows, notFound);
  }

  async findShareType(nameOrId: string): Promise<ShareType> {
    if (looksLikeId(nameOrId)) {
      try {
        return await this.shares.getShareType(nameOrId);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    const rows = (await this.shares.listShareTypes({ is_public: 'all' })).filter(
      (t) => t.name === nameOrId || t.id === nameOrId,
    );
    return this.one('share type', nameOrId, rows, null);
  }

  private one<T>(kind: string, nameOrId: string, rows: T[], notFound: unknown): T {
    if (rows.length === 1) return rows[0]!;
    if (rows.length > 1)
      throw new AmbiguousName(`More than one ${kind} exists with the name '${nameOrId}'; use its ID.`);
    // An id that was a 404 and no name either: report the server's 404 with its request id.
    if (notFound) throw notFound;
    throw new ResourceNotFound(`No ${kind} with a name or ID of '${nameOrId}' exists.`);
  }

  /**
   * A project's id from its name or id, through Keystone as OSC does; when Keystone refuses
   * (403: a non-admin) or cannot be reached with this auth, the string is taken as the id.
   */
  async projectId(nameOrId: string, domain?: string): Promise<string> {
    try {
      const domainId = domain ? (await this.identity.findDomain(domain)).id : undefined;
      return (await this.identity.findProject(nameOrId, domainId)).id;
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) return nameOrId;
      throw err;
    }
  }

  async userId(nameOrId: string, domain?: string): Promise<string> {
    const domainId = domain ? (await this.identity.findDomain(domain)).id : undefined;
    return (await this.identity.findUser(nameOrId, domainId)).id;
  }

  /** The token's project, for commands whose project argument is optional. */
  async currentProjectId(): Promise<string> {
    const info = await this.session.auth();
    if (!info.projectId)
      throw new CommandError('This token is not scoped to a project: name the project on the command line.');
    return info.projectId;
  }

  // ---- --wait ----

  /**
   * Runs a waiter with a spinner on stderr (only when stderr is a terminal) and turns its outcome
   * into the CLI's: a resource in an error status is exit 1 with its user message, a timeout exit 3.
   * `subject` names the resource ("share 1f0c…"), `goal` the state waited for ("available").
   */
  async wait<T>(
    subject: string,
    goal: string,
    flags: WaitFlags,
    waiter: (opts: PollOptions) => Promise<WaitOutcome<T>>,
  ): Promise<T | null> {
    const limit = timeoutMs(flags);
    const what = `${subject} to be ${goal}`;
    let spinner: Spinner | null = null;
    // Only on a terminal that reports its width (nanospinner loops on a 0-column terminal).
    if (process.stderr.isTTY && (process.stderr.columns ?? 0) > 0) {
      const { createSpinner } = require('nanospinner') as typeof import('nanospinner');
      spinner = createSpinner(`Waiting for ${what}`, { stream: process.stderr }).start();
    }
    let outcome: WaitOutcome<T>;
    try {
      outcome = await waiter({
        timeoutMs: limit,
        onPoll: ({ status, elapsedMs }) => {
          const seen = `${status ?? 'gone'} (${Math.round(elapsedMs / 1000)} s)`;
          spinner?.update({ text: `Waiting for ${what}: ${seen}` });
          this.debug(`${subject}: ${seen}`);
        },
      });
    } catch (err) {
      spinner?.error({ text: `Waiting for ${what}: failed` });
      throw err;
    }
    if (outcome.ok) {
      spinner?.success({ text: `${capitalize(subject)} is ${goal}` });
      return outcome.value;
    }
    if (outcome.reason === 'timeout') {
      spinner?.error({ text: `Gave up waiting for ${what}` });
      throw new CommandError(
        `Timed out after ${Math.round(outcome.elapsedMs / 1000)} s waiting for ${what} (status: ${outcome.status ?? 'gone'}).`,
        EXIT.TIMEOUT,
      );
    }
    spinner?.error({ text: `${capitalize(subject)}: ${outcome.status}` });
    const why = outcome.userMessage ?? 'the server left no message about it (see abaca share message list)';
    if (outcome.status === 'available')
      throw new CommandError(
        `${capitalize(subject)} is available again, but the change did not take effect: ${why}`,
      );
    throw new CommandError(`${capitalize(subject)} went to status ${outcome.status}: ${why}`);
  }
}

function capitalize(s: string): string {
  return s ? `${s[0]!.toUpperCase()}${s.slice(1)}` : s;
}
