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
  const idLen = Buffer.byteLength(r.id, 'utf8');
  if (idLen > RECORD_SIZE - 17) throw new ReplicatedError('EINVAL', 'file id too long');
  const buf = recordBuf.fill(0);
  buf.writeUInt32BE(RECORD_MAGIC, 0);
  // The 64-bit version as two halves (a safe integer; no BigInt on the write path).
  buf.writeUInt32BE(Math.floor(r.v / 2 ** 32), 8);
  buf.writeUInt32BE(r.v >>> 0, 12);
  buf.writeUInt8(idLen, 16);
  buf.write(r.id, 17, 'utf8');
  fs.writeSync(fd, buf, 0, RECORD_SIZE, ino * RECORD_SIZE);
}

export function readRecord(fd: number, ino: number): Rec {
  const buf = Buffer.alloc(RECORD_SIZE);
  const n = fs.readSync(fd, buf, 0, RECORD_SIZE, ino * RECORD_SIZE);
  if (n < RECORD_SIZE || buf.readUInt32BE(0) !== RECORD_MAGIC) return { id: '', v: 0 };
  const len = Math.min(buf.readUInt8(16), RECORD_SIZE - 17);
  return { id: buf.toString('utf8', 17, 17 + len), v: Number(buf.readBigUInt64BE(8)) };
}
