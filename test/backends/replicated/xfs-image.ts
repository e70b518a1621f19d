/**
 * An XFS loop image (reflink=1) for the tests of the reflink paths: mounted before the file's
 * tests, unmounted after. It needs root and mkfs.xfs (CI has both); `skip` says why when not.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { Cluster } from './helpers.ts';

const MIB = 1024 * 1024;

function cannotRun(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount an XFS loop image';
  try {
    execFileSync('mkfs.xfs', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'mkfs.xfs not found (Debian package xfsprogs)';
  }
  return null;
}

export interface XfsImage {
  /** Why the tests cannot run here, or null. */
  skip: string | null;
  /** A cluster whose brick directories are on the image. */
  startCluster(): Promise<Cluster>;
}

/** Registers the before/after hooks of a 1 GiB XFS image; call at the top of a test file. */
export function useXfsImage(): XfsImage {
  const skip = cannotRun();
  let mnt = '';
  before(() => {
    if (skip) return;
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-xfs-'));
    const img = path.join(base, 'xfs.img');
    mnt = path.join(base, 'mnt');
    fs.mkdirSync(mnt);
    fs.closeSync(fs.openSync(img, 'w'));
    fs.truncateSync(img, 1024 * MIB);
    execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
  });
  after(() => {
    if (skip || !mnt) return;
    execFileSync('umount', [mnt]);
    fs.rmSync(path.dirname(mnt), { recursive: true, force: true });
  });
  return {
    skip,
    async startCluster() {
      const saved = process.env['TMPDIR'];
      process.env['TMPDIR'] = mnt; // the cluster's brick directories go on the XFS image
      try {
        return await Cluster.start();
      } finally {
        if (saved === undefined) delete process.env['TMPDIR'];
        else process.env['TMPDIR'] = saved;
      }
    },
  };
}
