/**
 * Per-inode records of a brick's share (and of each snapshot): a sparse file with a 64-byte record
 * at offset ino * 64 holding a magic, the version and the file id.
 */
import fs from 'node:fs';
import { ReplicatedError } from '../protocol/errors.ts';

export const RECORD_SIZE = 64;
const RECORD_MAGIC = 0x41425231; // 'ABR1'

export interface Rec {
  id: string;
  v: number;
}

/** Scratch buffer for record writes (the brick is single-threaded; every write fills it whole). */
const recordBuf = Buffer.alloc(RECORD_SIZE);

/**
 * Records live at offset ino * 64 of a sparse file: one pwrite of 64 aligned bytes (never crossing a
 * sector), so a kill -9 leaves the old or the new record. A hole or a foreign pattern reads as
 * "no record" (id '', version 0).
 */
export function writeRecord(fd: number, ino: number, r: Rec): void {
  const buf = recordBuf.fill(0);
  encodeRecord(buf, 0, r);
  fs.writeSync(fd, buf, 0, RECORD_SIZE, ino * RECORD_SIZE);
}

export function readRecord(fd: number, ino: number): Rec {
  const buf = Buffer.alloc(RECORD_SIZE);
  const n = fs.readSync(fd, buf, 0, RECORD_SIZE, ino * RECORD_SIZE);
  if (n < RECORD_SIZE || buf.readUInt32BE(0) !== RECORD_MAGIC) return { id: '', v: 0 };
  const len = Math.min(buf.readUInt8(16), RECORD_SIZE - 17);
  return { id: buf.toString('utf8', 17, 17 + len), v: Number(buf.readBigUInt64BE(8)) };
}

/** Encodes `r` into `buf` at `off` (the layout writeRecord writes). */
function encodeRecord(buf: Buffer, off: number, r: Rec): void {
  const idLen = Buffer.byteLength(r.id, 'utf8');
  if (idLen > RECORD_SIZE - 17) throw new ReplicatedError('EINVAL', 'file id too long');
  buf.writeUInt32BE(RECORD_MAGIC, off);
  // The 64-bit version as two halves (a safe integer; no BigInt on the write path).
  buf.writeUInt32BE(Math.floor(r.v / 2 ** 32), off + 8);
  buf.writeUInt32BE(r.v >>> 0, off + 12);
  buf.writeUInt8(idLen, off + 16);
  buf.write(r.id, off + 17, 'utf8');
}

/** Gap (in records) a batch fills with empty slots rather than starting another write. */
const MAX_GAP = 64;
/** Records per write at most (1 MiB). */
const MAX_RUN = 16384;

/**
 * Writes many records into a records file that holds nothing at those inodes yet (a new tree's):
 * sorted by inode, neighbours in one pwrite, short gaps filled with empty slots (which read as "no
 * record", as a hole does). Inodes of files made one after another are mostly adjacent, so a tree's
 * records take a few writes instead of one per inode. A later batch into the same file passes
 * `fillGaps` false, so it never blanks a record an earlier batch wrote.
 */
export function writeRecordBatch(fd: number, recs: Map<number, Rec>, fillGaps = true): void {
  const maxGap = fillGaps ? MAX_GAP : 1;
  const inos = [...recs.keys()].sort((a, b) => a - b);
  let i = 0;
  while (i < inos.length) {
    const first = inos[i]!;
    let j = i + 1;
    while (j < inos.length && inos[j]! - inos[j - 1]! <= maxGap && inos[j]! - first < MAX_RUN) j++;
    const last = inos[j - 1]!;
    const buf = Buffer.alloc((last - first + 1) * RECORD_SIZE);
    for (let k = i; k < j; k++) encodeRecord(buf, (inos[k]! - first) * RECORD_SIZE, recs.get(inos[k]!)!);
    fs.writeSync(fd, buf, 0, buf.length, first * RECORD_SIZE);
    i = j;
  }
}
