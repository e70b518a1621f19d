/**
 * Mounts a share: connects to its share server, builds the file system and mounts it with FUSE.
 * The caller (the `abaca mount` command) finds the share's address and its token; this module
 * knows neither the share API nor the CLI.
 */
import fs from 'node:fs';
import { FuseSession } from '../fuse/session.ts';
import { DirectReads } from './direct-reads.ts';
import type { MountOptions } from './mount-options.ts';
import { hostPort, type ShareAddress, ShareConnection, serversOf } from './share-connection.ts';
import { ShareFs } from './share-fs.ts';

export interface MountRequest {
  dir: string;
  address: ShareAddress;
  options: MountOptions;
  /**
   * The source the kernel's mount table shows (df, findmnt): the share as it was named to the
   * mount, so that mount(8) finds an fstab line's mount by its source. Default: the export location.
   */
  source?: string;
  /** The identity token to mount with (asked again at every reconnection). */
  token?: () => Promise<string | undefined>;
  log?: (msg: string) => void;
}

export interface MountedShare {
  session: FuseSession;
  conn: ShareConnection;
  fs: ShareFs;
  /** Reads from the bricks (absent with `no_direct_reads`). */
  directReads?: DirectReads;
  /** The access the share's rules give this client ('ro' mounts read-only). */
  access: 'rw' | 'ro';
  readOnly: boolean;
  /** Resolves when the mount is gone (unmounted from here or from outside) and the connection closed. */
  closed: Promise<void>;
  unmount(lazy?: boolean): Promise<void>;
}

/** Why FUSE cannot be used here, or null when it can. */
export function fuseUnavailable(): string | null {
  if (!fs.existsSync('/dev/fuse')) return 'FUSE is not available: /dev/fuse does not exist (modprobe fuse)';
  if (process.getuid?.() !== 0) return 'FUSE is not available to this user: abaca mount must run as root';
  return null;
}

/** The address as one export location: `abaca://HOST:PORT[,HOST:PORT…]/SHARE_ID`. */
export function exportLocation(a: ShareAddress): string {
  return `abaca://${serversOf(a).map(hostPort).join(',')}/${a.share}`;
}

export async function mountShare(req: MountRequest): Promise<MountedShare> {
  const o = req.options;
  const adminToken = o.adminTokenFile ? fs.readFileSync(o.adminTokenFile, 'utf8').trim() : undefined;
  const conn = await ShareConnection.open({
    ...req.address,
    adminToken,
    token: req.token,
    retryMs: o.retryTimeout * 1000,
    log: req.log,
  });
  const directReads = o.directReads ? new DirectReads({ share: req.address.share, log: req.log }) : undefined;
  try {
    const readOnly = o.readOnly || conn.access === 'ro';
    const shareFs = await ShareFs.create(conn, {
      readOnly,
      writeBehindBytes: o.writeBehindMiB * 1024 * 1024,
      attrTimeoutMs: o.attrTimeout * 1000,
      directReads,
      log: req.log,
    });
    const session = await FuseSession.mount(req.dir, shareFs, {
      readers: o.readers,
      entryTimeout: o.entryTimeout,
      attrTimeout: o.attrTimeout,
      fsname: req.source ?? exportLocation(req.address),
      mountOptions: [...(readOnly ? ['ro'] : []), ...o.kernelFlags],
      debug: o.debug,
    });
    shareFs.invalidate = (ino) => session.notifyInvalInode(ino);
    shareFs.invalidateData = (ino) => session.notifyInvalInodeAsync(ino);
    const closed = session.closedPromise().then(() => {
      directReads?.close();
      conn.close();
    });
    return {
      session,
      conn,
      fs: shareFs,
      ...(directReads ? { directReads } : {}),
      access: conn.access,
      readOnly,
      closed,
      unmount: async (lazy = false) => {
        await session.unmount(lazy);
        await closed;
      },
    };
  } catch (err) {
    directReads?.close();
    conn.close();
    throw err;
  }
}
