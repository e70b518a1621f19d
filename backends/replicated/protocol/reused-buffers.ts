/**
 * Buffers of one size for file data, used again once the data has been sent or written. On this
 * machine, filling fresh memory costs the kernel a page fault for every page it copies into: a
 * cold 1 GiB read into new 1 MiB buffers took 4 times the system time of one into a reused
 * buffer. Bricks send read answers from them; a mount receives direct reads into them.
 */
/** ABACA_POISON_REUSED=1 (set by `npm test`): memory given back is overwritten at once. */
const POISON = process.env['ABACA_POISON_REUSED'] === '1';

export class ReusedBuffers {
  private readonly free: Buffer[] = [];

  /**
   * @param size each pooled buffer's size; larger requests get memory of their own
   * @param keep how many free buffers are kept at most (the rest are left to the collector)
   */
  constructor(
    readonly size = 1024 * 1024,
    private readonly keep = 32,
  ) {}

  /** A buffer of at least `n` bytes (its contents are whatever was there). */
  take(n: number): Buffer {
    if (n > this.size) return Buffer.allocUnsafeSlow(n);
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives `buf` back (one that `take` returned; nothing may use it afterwards). */
  give(buf: Buffer): void {
    // Tests fill memory given back, as glibc's MALLOC_PERTURB_ does: whatever still reads it (a
    // socket write queued past its hold) then sends or stores the pattern, and checksums fail.
    if (POISON) buf.fill(0xdb);
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf);
  }
}
