/**
 * The outcomes of the latest mutations a brick applied, by the client's request id, per share.
 *
 * A client whose share server died (or whose connection dropped) sends its in-flight mutations
 * again, to the same server or to the one that took the share over. A mutation the old server had
 * already brought to a brick must not be applied a second time there (an append would be
 * duplicated, an exclusive create would answer EEXIST): the brick answers a known request id with
 * the outcome it recorded, and the share server asks the bricks about a re-sent request before it
 * plans it (server/share-coordinator.ts). Kept in memory, bounded per share: a brick restart
 * forgets them (docs/replicated.md, "Re-sent requests").
 */
import { ReplicatedError, toReplicatedError } from '../protocol/errors.ts';

/** What a mutation answered on this brick: its reply header, or its error. */
export type Outcome = { header: object } | { e: string; m: string };

/** Failures that did not apply the mutation for a reason of the moment: not remembered. */
const UNDECIDED = new Set(['EIO', 'ENOSPC', 'ENOTCONN', 'ETIMEDOUT', 'ESTALE', 'ENXIO', 'EAGAIN']);

/** Request ids remembered per share: far more than a client has in flight at once. */
const PER_SHARE = 16_384;

export class RecentRequests {
  private readonly byShare = new Map<string, Map<string, Outcome>>();

  constructor(private readonly perShare = PER_SHARE) {}

  get(share: string, rid: string): Outcome | undefined {
    return this.byShare.get(share)?.get(rid);
  }

  put(share: string, rid: string, outcome: Outcome): void {
    let m = this.byShare.get(share);
    if (!m) {
      m = new Map();
      this.byShare.set(share, m);
    }
    m.set(rid, outcome);
    if (m.size > this.perShare) m.delete(m.keys().next().value as string);
  }

  forget(share: string): void {
    this.byShare.delete(share);
  }

  /**
   * Runs a mutation under its request id: a known id answers what it answered the first time
   * (without applying it again); a new one is applied and its outcome kept.
   */
  run(
    share: string,
    rid: string | undefined,
    apply: () => object | Promise<object>,
  ): object | Promise<object> {
    if (rid === undefined) return apply();
    const known = this.get(share, rid);
    if (known) return replay(known);
    const fail = (err: unknown): never => {
      const e = toReplicatedError(err);
      // The disk's trouble (EIO, ENOSPC) is not the operation's answer: a re-send may apply it.
      if (!UNDECIDED.has(e.code)) this.put(share, rid, { e: e.code, m: e.message });
      throw e;
    };
    let r: object | Promise<object>;
    try {
      r = apply();
    } catch (err) {
      return fail(err);
    }
    if (!(r instanceof Promise)) {
      this.put(share, rid, { header: r });
      return r;
    }
    return r.then((header) => {
      this.put(share, rid, { header });
      return header;
    }, fail);
  }
}

/** A recorded outcome, answered again. */
export function replay(o: Outcome): object {
  if ('header' in o) return o.header;
  throw new ReplicatedError(o.e as ReplicatedError['code'], o.m);
}
