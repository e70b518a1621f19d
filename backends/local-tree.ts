/**
 * Directory-tree helpers for the local backend: a copy that keeps modes, times, symlinks (and owners
 * when running as root), reflinking files where the filesystem can, and a usage walk.
 */

import type { Stats } from 'node:fs';
import { constants } from 'node:fs';
import {
  chmod,
  copyFile,
  lchown,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError } from './errors.ts';

export type CloneMethod = 'reflink' | 'copy';

// Errors meaning "this filesystem cannot clone", as opposed to a real I/O failure.
const NO_CLONE = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY', 'EPERM']);

export function isNoCloneError(err: unknown): boolean {
  return NO_CLONE.has((err as NodeJS.ErrnoException).code ?? '');
}

/** Tries a reflink of a small probe file inside `dir` (which must exist). */
export async function probeReflink(dir: string): Promise<CloneMethod> {
  const a = join(dir, `reflink-probe-${process.pid}-${Date.now()}`);
  const b = `${a}.clone`;
  try {
    await writeFile(a, 'abaca reflink probe\n');
    await copyFile(a, b, constants.COPYFILE_FICLONE_FORCE);
    return 'reflink';
  } catch (err) {
    if (isNoCloneError(err)) return 'copy';
    throw err;
  } finally {
    await rm(a, { force: true });
    await rm(b, { force: true });
  }
}

const isRoot = process.getuid?.() === 0;

/** Copies the directory `src` to `dst` (which must not exist), recursively. */
export async function copyTree(src: string, dst: string, method: CloneMethod): Promise<void> {
  const st = await lstat(src);
  if (!st.isDirectory()) throw new BackendError('Failed', `${src} is not a directory.`);
  await copyEntry(src, dst, st, method);
}

async function copyEntry(src: string, dst: string, st: Stats, method: CloneMethod): Promise<void> {
  if (st.isDirectory()) {
    // Owner-only while filling, the real mode (which may forbid writing) once the children are in.
    await mkdir(dst, { mode: 0o700 });
    for (const name of await readdir(src)) {
      const s = join(src, name);
      await copyEntry(s, join(dst, name), await lstat(s), method);
    }
    await setOwnerModeTimes(dst, st);
  } else if (st.isFile()) {
    await cloneFile(src, dst, method);
    await setOwnerModeTimes(dst, st);
  } else if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
    if (isRoot) await lchown(dst, st.uid, st.gid);
    await lutimes(dst, st.atimeMs / 1000, st.mtimeMs / 1000);
  } else {
    // A FIFO, socket or device node cannot be recreated from Node; skipping it would break "equal".
    throw new BackendError('NotSupported', `Cannot copy special file ${src}.`);
  }
}

async function cloneFile(src: string, dst: string, method: CloneMethod): Promise<void> {
  if (method === 'reflink') {
    try {
      await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
      return;
    } catch (err) {
      if (!isNoCloneError(err)) throw err;
      await rm(dst, { force: true });
    }
  }
  await copyFile(src, dst, constants.COPYFILE_EXCL);
}

async function setOwnerModeTimes(path: string, st: Stats): Promise<void> {
  // chown first: it clears setuid/setgid bits that chmod then restores.
  if (isRoot) await lchown(path, st.uid, st.gid);
  await chmod(path, st.mode & 0o7777);
  // Seconds as a number keep sub-millisecond precision (a Date would drop it).
  await utimes(path, st.atimeMs / 1000, st.mtimeMs / 1000);
}

export interface TreeUsage {
  usedBytes: number;
  files: number;
}

/**
 * Sums the logical size of regular files (a hard-linked file once) and counts every non-directory
 * entry. A missing directory uses nothing.
 */
export async function treeUsage(dir: string): Promise<TreeUsage> {
  const seen = new Set<string>();
  const out: TreeUsage = { usedBytes: 0, files: 0 };
  async function walk(d: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      const p = join(d, name);
      const st = await lstat(p);
      if (st.isDirectory()) {
        await walk(p);
        continue;
      }
      if (st.isFile() && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      out.files += 1;
      if (st.isFile()) out.usedBytes += st.size;
    }
  }
  await walk(dir);
  return out;
}
