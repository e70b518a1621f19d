/**
 * Buffers of one size for file data, used again once the data has been sent or written. On this
 * machine, filling fresh memory costs the kernel a page fault for every page it copies into: a
 * cold 1 GiB read into new 1 MiB buffers took 4 times the system time of one into a reused
 * buffer. Bricks send read answers from them; a mount receives direct reads into them.
 */
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
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf);
  }
}
