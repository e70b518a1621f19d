/**
 * The frame decoder's two ways in: chunks it may keep (push) and chunks in one reused buffer that
 * it must copy from (pushCopy, behind sockets that read into one buffer). Seeded random splits of
 * a stream of frames give the same frames both ways, and nothing of a reused chunk leaks into a
 * frame; a length over the limit is refused before any memory is taken for it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  encodeFrame,
  type Frame,
  FrameDecoder,
  KIND_REQUEST,
} from '../../../backends/replicated/protocol/frame.ts';
import { rng } from './helpers.ts';

function stream(seed: number): { bytes: Buffer; frames: Array<{ header: object; payload: Buffer }> } {
  const rand = rng(seed);
  const frames: Array<{ header: object; payload: Buffer }> = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    const size = rand() < 0.3 ? 0 : Math.floor(rand() * (rand() < 0.2 ? 600_000 : 3000));
    const payload = randomBytes(size);
    const header = { i, name: 'x'.repeat(Math.floor(rand() * 200)) };
    frames.push({ header, payload });
    parts.push(...encodeFrame(i + 1, 5, KIND_REQUEST, header, payload));
  }
  return { bytes: Buffer.concat(parts), frames };
}

function check(got: Frame[], want: Array<{ header: object; payload: Buffer }>, how: string): void {
  assert.equal(got.length, want.length, how);
  for (const [i, f] of got.entries()) {
    assert.equal(f.reqId, i + 1, how);
    assert.deepEqual(f.header, want[i]!.header, how);
    assert.ok(f.payload.equals(want[i]!.payload), `${how}: payload of frame ${i}`);
  }
}

test('copied and kept chunks decode to the same frames at any split', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const { bytes, frames } = stream(seed);
    const rand = rng(seed * 7);
    const reused = Buffer.alloc(256 * 1024);
    const kept = new FrameDecoder();
    const copied = new FrameDecoder();
    const fromKept: Frame[] = [];
    const fromCopied: Frame[] = [];
    for (let at = 0; at < bytes.length; ) {
      // Splits of 1 byte to 256 KiB, the length field and headers cut anywhere.
      const n = Math.min(bytes.length - at, 1 + Math.floor(rand() ** 3 * reused.length));
      fromKept.push(...kept.push(Buffer.from(bytes.subarray(at, at + n))));
      bytes.copy(reused, 0, at, at + n);
      fromCopied.push(...copied.pushCopy(reused.subarray(0, n)));
      reused.fill(0xee); // what a reused buffer holds next; must not show in any frame
      at += n;
    }
    check(fromKept, frames, `push, seed ${seed}`);
    check(fromCopied, frames, `pushCopy, seed ${seed}`);
    assert.equal(copied.pendingBytes, 0);
  }
});

test('pushCopy refuses a frame over the limit before taking memory for it', () => {
  const d = new FrameDecoder(1024);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(2 * 1024 * 1024 * 1024, 0);
  assert.throws(() => d.pushCopy(head.subarray(0, 2)) && d.pushCopy(head.subarray(2)), /EMSGSIZE|over 1024/);
  const small = Buffer.alloc(4);
  small.writeUInt32BE(3, 0);
  assert.throws(() => new FrameDecoder().pushCopy(small), /below minimum/);
});
