/**
 * Scratch file systems for the snapshot benches: a fresh ext4 or XFS (reflink=1) loop image per
 * case, so no case inherits another's page cache or fragmentation, and clean-up is an unmount
 * rather than deleting a million files. Without root, mkfs or loop devices a case runs in a plain
 * directory of os.tmpdir() ('tmpdir').
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type FsKind = 'ext4' | 'xfs' | 'tmpdir';

const MIB = 1024 * 1024;

export function secs(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
}

/** Flushes one filesystem (sync -f), so a timed step does not pay for the previous one's writeback. */
export function syncFs(dir: string): void {
  run('sync', ['-f', dir]);
}

export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bfree * s.bsize;
}

export function fsTypeName(dir: string): string {
  const magic: Record<number, string> = {
    61267: 'ext4',
    1481003842: 'xfs',
    2435016766: 'btrfs',
    16914836: 'tmpfs',
  };
  const t = fs.statfsSync(dir).type;
  return magic[t] ?? `fs 0x${t.toString(16)}`;
}

/** Loop images under one temp directory; `cleanup()` unmounts whatever is still mounted. */
export class ScratchFs {
  readonly base = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-bench-snapshot-'));
  private readonly mounts = new Set<string>();

  /**
   * A fresh, mounted file system of `imgMiB` MiB (sparse image; for tmpdir: a fresh directory).
   * ext4 gets one inode per `inodeKiB` KiB (default 4: room for several trees of 4 KiB files), its
   * tables written now, not by a background thread during the measurements.
   */
  make(kind: FsKind, imgMiB: number, label: string, inodeKiB = 4): string {
    const dir = path.join(this.base, label);
    fs.mkdirSync(dir);
    if (kind === 'tmpdir') return dir;
    const img = `${dir}.img`;
    const mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    const fd = fs.openSync(img, 'w');
    fs.ftruncateSync(fd, Math.max(512, imgMiB) * MIB);
    fs.closeSync(fd);
    if (kind === 'xfs') run('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', img]);
    else
      run('mkfs.ext4', [
        '-q',
        '-F',
        '-i',
        String(inodeKiB * 1024),
        '-E',
        'lazy_itable_init=0,lazy_journal_init=0',
        img,
      ]);
    run('mount', ['-o', 'loop', img, mnt]);
    this.mounts.add(mnt);
    return mnt;
  }

  drop(kind: FsKind, mnt: string): void {
    if (kind !== 'tmpdir') {
      run('umount', [mnt]);
      this.mounts.delete(mnt);
      fs.rmSync(`${path.dirname(mnt)}.img`, { force: true });
    }
    fs.rmSync(kind === 'tmpdir' ? mnt : path.dirname(mnt), { recursive: true, force: true });
  }

  /** Checks, before any measurement, that loop images can be made here; says why not otherwise. */
  canLoopMount(kind: 'ext4' | 'xfs'): string | undefined {
    if (process.getuid?.() !== 0) return 'needs root for loop mounts';
    try {
      const mnt = this.make(kind, 1, `probe-${kind}`);
      this.drop(kind, mnt);
      return undefined;
    } catch (err) {
      return (err as Error).message.split('\n')[0];
    }
  }

  /** The label a row shows for a file system of this kind. */
  label(kind: FsKind, mnt: string): string {
    return kind === 'tmpdir' ? `${fsTypeName(mnt)} (${os.tmpdir()})` : `${kind} (loop)`;
  }

  cleanup(): void {
    for (const mnt of this.mounts) {
      try {
        run('umount', [mnt]);
      } catch {
        try {
          run('umount', ['-l', mnt]);
        } catch {}
      }
    }
    this.mounts.clear();
    fs.rmSync(this.base, { recursive: true, force: true });
  }
}
