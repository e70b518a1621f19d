/**
 * A brick's dirty markers ("an operation started on this path here"; AFR's dirty xattr) for one
 * share, kept as an append-only log in the markers directory instead of one file per path.
 *
 * Every mutation marks its paths before it is applied and the share server cleans them once a
 * quorum has it, so one file per marker meant creating and removing an inode per create and
 * per write: on ext4 that is a directory insert and delete each time, and without a journal the
 * inode allocator then also probes every recently freed inode. A log line costs one append.
 *
 * Durability is unchanged: a marker file was on disk only after the next fsync of the markers
 * directory (a mutation's fsync or `sync`); a log line is on disk after the next `sync()`, which
 * the same fsync calls. A process that crashes still leaves every appended line in the page cache.
 *
 *   <dir>/markers.log   lines `+"path"` (marked) and `-"path"` (cleaned), JSON strings
 *   <dir>/<sha1(path)>  a marker of the older layout: read once, then moved into the log
 *
 * The log is rewritten (a temporary file, fsync, rename) with only the live markers once it has
 * grown past COMPACT_BYTES and is mostly cleaned lines.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const MARKER_LOG = 'markers.log';
const COMPACT_BYTES = 1024 * 1024;
const { O_WRONLY, O_APPEND, O_CREAT, O_RDONLY, O_DIRECTORY } = fs.constants;

export class MarkerLog {
  /** Paths marked and not cleaned. */
  readonly paths = new Set<string>();
  private fd: number;
  private size: number;
  /** The log was replaced by a rename since the last sync: the directory needs an fsync too. */
  private renamed = false;

  constructor(private readonly dir: string) {
    const file = path.join(dir, MARKER_LOG);
    const legacy: string[] = [];
    for (const f of fs.readdirSync(dir)) {
      if (f === MARKER_LOG) continue;
      const full = path.join(dir, f);
      if (f.includes('.tmp-')) {
        fs.rmSync(full, { force: true });
        continue;
      }
      this.paths.add(fs.readFileSync(full, 'utf8'));
      legacy.push(full);
    }
    if (fs.existsSync(file)) {
      const text = fs.readFileSync(file);
      for (const [op, p] of parseLog(text.toString('utf8'))) this.apply(op, p);
      // A line cut short is dropped, so that the next append starts a line of its own.
      const whole = text.lastIndexOf(0x0a) + 1;
      if (whole < text.length) fs.truncateSync(file, whole);
    }
    if (legacy.length > 0) {
      // Into the log first (durably), then the old files can go.
      this.rewrite();
      syncDir(dir);
      this.renamed = false;
      for (const f of legacy) fs.rmSync(f, { force: true });
    }
    this.fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT, 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  has(p: string): boolean {
    return this.paths.has(p);
  }

  /** Marks the paths not marked yet: one append. */
  mark(paths: string[]): void {
    const add = paths.filter((p) => !this.paths.has(p));
    if (add.length === 0) return;
    this.append('+', add);
    for (const p of add) this.paths.add(p);
  }

  /** Cleans the paths that are marked: one append (and now and then a rewrite). */
  clean(paths: string[]): void {
    const gone = [...new Set(paths)].filter((p) => this.paths.has(p));
    if (gone.length === 0) return;
    this.append('-', gone);
    for (const p of gone) this.paths.delete(p);
    if (this.size > COMPACT_BYTES && this.liveBytes() * 4 < this.size) this.compact();
  }

  /** Puts every mark and clean so far on disk. */
  sync(): void {
    fs.fsyncSync(this.fd);
    if (this.renamed) {
      syncDir(this.dir);
      this.renamed = false;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private apply(op: '+' | '-', p: string): void {
    if (op === '+') this.paths.add(p);
    else this.paths.delete(p);
  }

  private append(op: '+' | '-', paths: string[]): void {
    const buf = Buffer.from(paths.map((p) => `${op}${JSON.stringify(p)}\n`).join(''));
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
    this.size += buf.length;
  }

  private liveBytes(): number {
    let n = 0;
    for (const p of this.paths) n += p.length + 4;
    return n;
  }

  private compact(): void {
    fs.closeSync(this.fd);
    this.rewrite();
    this.fd = fs.openSync(path.join(this.dir, MARKER_LOG), O_WRONLY | O_APPEND | O_CREAT, 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  /** The log replaced by one holding only the live markers (written and flushed before the rename). */
  private rewrite(): void {
    const file = path.join(this.dir, MARKER_LOG);
    const tmp = `${file}.tmp-${randomUUID().slice(0, 8)}`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, [...this.paths].map((p) => `+${JSON.stringify(p)}\n`).join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    this.renamed = true;
  }
}

/**
 * The log's lines in order. A last line without its newline (a write cut short by a power loss)
 * and lines that do not parse are skipped.
 */
export function parseLog(text: string): Array<['+' | '-', string]> {
  const out: Array<['+' | '-', string]> = [];
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a line cut short
  for (const line of lines) {
    const op = line[0];
    if (op !== '+' && op !== '-') continue;
    try {
      const p = JSON.parse(line.slice(1)) as unknown;
      if (typeof p === 'string') out.push([op, p]);
    } catch {
      // not a whole line
    }
  }
  return out;
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
