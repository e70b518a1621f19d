/**
 * The kernel's mount table as this process sees it (/proc/self/mountinfo): read, never a stat of
 * the mount point, which would hang on a FUSE mount whose server is stuck.
 */
import fs from 'node:fs';

export interface MountEntry {
  mountPoint: string;
  root: string;
  fsType: string;
  source: string;
  options: string[];
}

/** mountinfo writes space, tab, newline and backslash as \ooo. */
const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const g = post.split(' ');
    out.push({
      root: unescapeOctal(f[3] ?? ''),
      mountPoint: unescapeOctal(f[4] ?? ''),
      options: (f[5] ?? '').split(','),
      fsType: g[0] ?? '',
      source: unescapeOctal(g[1] ?? ''),
    });
  }
  return out;
}

/** The mounts now, in the order they were made. */
export function readMounts(): MountEntry[] {
  return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** Whether something is mounted on dir (an absolute path). */
export function isMountPoint(dir: string): boolean {
  return readMounts().some((m) => m.mountPoint === dir);
}
