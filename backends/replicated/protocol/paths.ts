/**
 * Share-relative paths on the wire: '' (or '.') is the share root, otherwise names joined by '/'.
 * Absolute paths, empty components, '.', '..', NUL bytes and names over 255 bytes are refused.
 */
import { ReplicatedError } from './errors.ts';

export const MAX_NAME_BYTES = 255;
export const MAX_PATH_BYTES = 4096;

export function checkPath(p: unknown): string {
  if (typeof p !== 'string') throw new ReplicatedError('EINVAL', 'path must be a string');
  if (p === '' || p === '.') return '';
  if (p.includes('\0')) throw new ReplicatedError('EINVAL', 'NUL byte in path');
  if (p.startsWith('/')) throw new ReplicatedError('EINVAL', 'absolute path');
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) throw new ReplicatedError('ENAMETOOLONG', 'path too long');
  for (const name of p.split('/')) checkName(name);
  return p;
}

export function checkName(name: unknown): string {
  if (typeof name !== 'string') throw new ReplicatedError('EINVAL', 'name must be a string');
  if (name === '' || name === '.' || name === '..') throw new ReplicatedError('EINVAL', `bad name '${name}'`);
  if (name.includes('/') || name.includes('\0')) throw new ReplicatedError('EINVAL', 'bad character in name');
  if (Buffer.byteLength(name) > MAX_NAME_BYTES)
    throw new ReplicatedError('ENAMETOOLONG', 'name over 255 bytes');
  return name;
}

/** A project id as the share API sends it (a UUID or a Keystone-style hex id). */
export function checkProject(v: unknown): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v))
    throw new ReplicatedError('EINVAL', 'project must be a project id');
  return v;
}

/**
 * A root name clients may not use: `.abaca-links/<file id>` names, for heal, the inode of a file
 * with several hard links on a brick (its index entry), so a write missed through any of its names
 * is healed once for all of them.
 */
export const LINKS_ROOT = '.abaca-links';

export function isLinkPath(p: string): boolean {
  return p.startsWith(`${LINKS_ROOT}/`);
}

/** A path from a client: valid, and not inside the reserved root name. */
export function checkClientPath(p: unknown): string {
  const rel = checkPath(p);
  if (rel === LINKS_ROOT || isLinkPath(rel))
    throw new ReplicatedError('EPERM', `${LINKS_ROOT} is reserved at the share root`);
  return rel;
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

export function depthOf(p: string): number {
  return p === '' ? 0 : p.split('/').length;
}

/** True when `p` is `anc` or lies below it. */
export function isUnder(p: string, anc: string): boolean {
  return anc === '' || p === anc || p.startsWith(`${anc}/`);
}

export function ancestorsOf(p: string): string[] {
  const out = [''];
  if (p === '') return out;
  const parts = p.split('/');
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}
