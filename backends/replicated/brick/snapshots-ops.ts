/** The brick protocol's snapshot operations (opcodes 0x114–0x119), over brick/snapshots.ts. */
import fs from 'node:fs';
import path from 'node:path';
import { ReplicatedError } from '../protocol/errors.ts';
import { OP } from '../protocol/opcodes.ts';
import { checkName } from '../protocol/paths.ts';
import type { HandlerResult } from '../protocol/rpc-server.ts';
import type { ShareInfo } from '../protocol/types.ts';
import { num } from '../protocol/wire-args.ts';
import type { ShareStore } from './brick-store.ts';
import { healStaging } from './snapshot-heal.ts';
import {
  cloneFromSnap,
  createSnap,
  deletedSnaps,
  deleteSnap,
  type LiveShare,
  listSnaps,
  maxVersion,
  readSnap,
  revertShare,
} from './snapshots.ts';

export const SNAPSHOT_OPS = new Set<number>([
  OP.bSnapCreate,
  OP.bSnapDelete,
  OP.bSnapList,
  OP.bSnapMaxVersion,
  OP.bSnapRevert,
  OP.bSnapClone,
  OP.bSnapFind,
]);

/** What the operations need of the brick server. */
export interface SnapshotHost {
  share(id: unknown): ShareStore;
  sharesDir(): string;
  trashDir(): string;
  tombstoned(id: string): boolean;
  /** Closes the share's store, runs fn, and opens it again (same share server session). */
  reopen(id: string, fn: () => void): void;
  noteShare(info: ShareInfo): void;
}

function live(s: ShareStore): LiveShare {
  return {
    dir: s.dir,
    dataDir: s.dataDir,
    size: s.info.size,
    shared: s.shared,
    getRecord: (ino) => s.getRecord(ino),
  };
}

export function handleSnapshotOp(b: SnapshotHost, op: number, h: Record<string, unknown>): HandlerResult {
  if (op === OP.bSnapFind) {
    // Snapshot ids are unique across shares: which shares here hold (or deleted) this one.
    const snapId = checkName(h['snapshot']);
    const shares = fs
      .readdirSync(b.sharesDir())
      .filter(
        (n) =>
          !n.includes('.tmp-') &&
          (readSnap(path.join(b.sharesDir(), n), snapId) !== undefined ||
            fs.existsSync(path.join(b.sharesDir(), n, 'meta', 'snaps-deleted', snapId))),
      );
    return { header: { shares } };
  }
  const s = b.share(h['share']);
  // Reads may come without an epoch (heal info); every change is fenced.
  if (h['epoch'] !== undefined || op !== OP.bSnapList) s.checkEpoch(h['epoch'], h['session']);
  switch (op) {
    case OP.bSnapList:
      return { header: { snaps: listSnaps(s.dir), deleted: deletedSnaps(s.dir) } };
    case OP.bSnapCreate: {
      const snap = createSnap(live(s), checkName(h['snapshot']), {
        method: h['method'],
        createdAt: h['createdAt'],
      });
      return { header: { snap } };
    }
    case OP.bSnapDelete:
      deleteSnap(s.dir, checkName(h['snapshot']), b.trashDir());
      // Nothing links the share's files any more (no snapshot, no clone on either side, no
      // snapshot being healed here): writes stop checking.
      if (
        listSnaps(s.dir).length === 0 &&
        !fs.existsSync(path.join(s.dir, 'meta', 'clones')) &&
        !healStaging(s.dir)
      )
        s.shared.clear();
      return {};
    case OP.bSnapMaxVersion:
      return { header: { v: maxVersion(live(s)) } };
    case OP.bSnapRevert: {
      const snapId = checkName(h['snapshot']);
      if (!readSnap(s.dir, snapId)) throw new ReplicatedError('ENOENT', `snapshot ${snapId} not found`);
      const bump = num(h['bump'], 0);
      let done: ReturnType<typeof revertShare> | undefined;
      b.reopen(s.info.id, () => {
        done = revertShare(s.dir, snapId, bump, b.trashDir());
      });
      return { header: { snap: done?.info, method: done?.method } };
    }
    case OP.bSnapClone: {
      const snapId = checkName(h['snapshot']);
      const nid = checkName(h['newShare']);
      if (b.tombstoned(nid)) throw new ReplicatedError('EINVAL', `share ${nid} was deleted`);
      const dst = path.join(b.sharesDir(), nid);
      let method: string | undefined;
      if (!fs.existsSync(path.join(dst, 'share.json'))) {
        const info = { ...(h['info'] as ShareInfo), id: nid };
        // Both shares may now link the same inodes: neither ever drops its copy-on-write set.
        fs.writeFileSync(path.join(s.dir, 'meta', 'clones'), '');
        method = cloneFromSnap(s.dir, snapId, dst, info);
      }
      const info = b.share(nid).info;
      b.noteShare(info);
      return { header: { info, method } };
    }
    default:
      throw new ReplicatedError('ENOSYS', `unknown opcode ${op}`);
  }
}
