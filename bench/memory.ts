/**
 * Resident memory of a process tree, from /proc. Summing the RSS of several processes counts the
 * pages they share (the node binary's code, mapped by each) once per process; the tree's own
 * footprint counts each physical page once. With root, /proc/PID/pagemap names the physical page
 * behind every resident virtual one, and their union is that footprint; without it, only the sums.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

export interface ProcessMemory {
  pid: number;
  /** The command line, shortened (node and the repository path left out). */
  command: string;
  rssMb: number;
  /** Pages no other process maps (smaps_rollup Private_*). */
  privateMb: number;
}

export interface TreeMemory {
  processes: ProcessMemory[];
  sumRssMb: number;
  /** Distinct physical pages resident in any process of the tree; null without root. */
  distinctMb: number | null;
}

const PAGE = 4096;
const MB = 1024 * 1024;

/** pid and its descendants, parents first. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {} // gone meanwhile
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

function rollup(pid: number): { rss: number; priv: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kb('Rss') * 1024, priv: (kb('Private_Clean') + kb('Private_Dirty')) * 1024 };
}

function command(pid: number): string {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  return argv
    .map((a) => a.replace(/^.*\/(bin|dist)\//, '$1/'))
    .filter((a, i) => !(i === 0 && /(^|\/)node$/.test(a)))
    .join(' ')
    .slice(0, 60);
}

/** Adds the physical frame numbers of pid's resident pages to `frames`; false if they are hidden. */
function addFrames(pid: number, frames: Set<number>): boolean {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  let seen = false;
  try {
    const chunkPages = 16384;
    const buf = Buffer.alloc(chunkPages * 8);
    for (const line of maps) {
      const [range, perms] = line.split(' ') as [string, string];
      if (perms.startsWith('---')) continue; // reserved, never resident (WebAssembly's guard regions)
      const [start, end] = range.split('-').map((h) => Number.parseInt(h, 16)) as [number, number];
      for (let page = start / PAGE; page < end / PAGE; page += chunkPages) {
        const n = Math.min(chunkPages, end / PAGE - page);
        const got = readSync(fd, buf, 0, n * 8, page * 8);
        for (let i = 0; i < got / 8; i++) {
          const entry = buf.readBigUInt64LE(i * 8);
          if (!(entry & (1n << 63n))) continue; // not present
          const frame = Number(entry & ((1n << 55n) - 1n));
          if (frame !== 0) seen = true;
          frames.add(frame);
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return seen;
}

export function treeMemory(root: number): TreeMemory {
  const processes: ProcessMemory[] = [];
  const frames = new Set<number>();
  let framesVisible = true;
  for (const pid of processTree(root)) {
    try {
      const r = rollup(pid);
      processes.push({ pid, command: command(pid), rssMb: r.rss / MB, privateMb: r.priv / MB });
      if (framesVisible) framesVisible = addFrames(pid, frames);
    } catch {} // exited meanwhile
  }
  return {
    processes,
    sumRssMb: processes.reduce((s, p) => s + p.rssMb, 0),
    distinctMb: framesVisible ? (frames.size * PAGE) / MB : null,
  };
}
