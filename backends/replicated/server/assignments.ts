/**
 * Which share server serves which share, as far as this one knows. The cluster monitor (in the API
 * tier, backends/replicated/cluster.ts) decides the owner of each share once, in PostgreSQL, and
 * tells every share server: the owner attaches the share, the others remember where it is and send
 * clients there (EMOVED with the owner's address).
 *
 * A share server started with `--cluster` is *managed*: it serves a client only the shares it was
 * told to serve (or that an admin call — the driver, which reads the same assignment — made it
 * attach), so a share server that restarts or wakes up never takes a share from its owner because a
 * client happened to ask it. Without `--cluster` (one share server, solo mode) a share is attached on
 * first use, as before.
 */
import { ReplicatedError } from '../protocol/errors.ts';

export const HERE = 'here';

export class Assignments {
  /** Share id -> HERE, or the `host:port` clients should use for it. */
  private readonly where = new Map<string, string>();
  /** Share id -> the generation of the newest assignment heard (older ones are ignored). */
  private readonly gens = new Map<string, number>();

  constructor(readonly managed: boolean) {}

  /** Where the share is served, when it is not here (a `host:port`), else undefined. */
  elsewhere(id: string): string | undefined {
    const w = this.where.get(id);
    return w === undefined || w === HERE ? undefined : w;
  }

  isHere(id: string): boolean {
    return this.where.get(id) === HERE;
  }

  serveHere(id: string): void {
    this.where.set(id, HERE);
  }

  servedAt(id: string, at: string): void {
    this.where.set(id, at);
  }

  /**
   * An assignment from the cluster monitor, with the generation of its decision: false (and
   * nothing changes) when a newer one was heard already — a monitor that read the table before
   * another moved the share must not move it back.
   */
  accept(id: string, gen: number): boolean {
    if (gen < (this.gens.get(id) ?? -1)) return false;
    this.gens.set(id, gen);
    return true;
  }

  /** No longer served here, and where it went is not known (fenced, detached). */
  notHere(id: string): void {
    if (this.where.get(id) === HERE) this.where.delete(id);
  }

  /** The error for a client of a share that is not served here. */
  moved(id: string): ReplicatedError {
    const at = this.elsewhere(id);
    return new ReplicatedError(
      'EMOVED',
      at ? `share ${id} is served at ${at}` : `share ${id} is no longer served here`,
      at,
    );
  }

  /**
   * May a client have `id` served here? Elsewhere: EMOVED; managed and not assigned here: EAGAIN
   * (the cluster monitor assigns it within a few seconds; the client tries again or elsewhere).
   */
  admitClient(id: string): void {
    if (this.elsewhere(id) !== undefined) throw this.moved(id);
    if (this.managed && !this.isHere(id))
      throw new ReplicatedError('EAGAIN', `share ${id} is not assigned to this share server (yet)`);
  }

  /** Shares this server was told to serve. */
  here(): string[] {
    return [...this.where].filter(([, w]) => w === HERE).map(([id]) => id);
  }
}
