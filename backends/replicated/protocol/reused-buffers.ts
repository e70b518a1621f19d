/** ABACA_POISON_REUSED=1 (set by `npm test`): memory given back is overwritten at once. */
const POISON = process.env['ABACA_POISON_REUSED'] === '1';

/** How often free buffers that nothing took since the last look are let go (ms). */
const TRIM_MS = 30_000;

/**
 * Buffers of one size for file data, used again once the data has been sent or written. On this
 * machine, filling fresh memory costs the kernel a page fault for every page it copies into: a
 * cold 1 GiB read into new 1 MiB buffers took 4 times the system time of one into a reused
 * buffer. Bricks send read answers from them; a mount receives direct reads into them; the share
 * server and the bricks receive large requests into them (protocol/rpc-server.ts).
 *
 * Free buffers that sat unused for a whole trim period are left to the collector, so a burst of
 * I/O does not keep its peak of memory for good.
 */
export class ReusedBuffers {
  private readonly free: Buffer[] = [];
  /** The fewest free buffers there were since the last trim: that many sat unused throughout. */
  private lowWater = 0;
  private trimmer: NodeJS.Timeout | undefined;

  /**
   * @param size each pooled buffer's size; larger requests get memory of their own
   * @param keep how many free buffers are kept at most (the rest are left to the collector)
   * @param trimMs how often buffers unused since the last look are let go
   */
  constructor(
    readonly size = 1024 * 1024,
    private readonly keep = 32,
    private readonly trimMs = TRIM_MS,
  ) {}

  /** How many free buffers are kept now. */
  get kept(): number {
    return this.free.length;
  }

  /** A buffer of at least `n` bytes (its contents are whatever was there). */
  take(n: number): Buffer {
    if (n > this.size) return Buffer.allocUnsafeSlow(n);
    const buf = this.free.pop();
    if (this.free.length < this.lowWater) this.lowWater = this.free.length;
    return buf ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives `buf` back (one that `take` returned; nothing may use it afterwards). */
  give(buf: Buffer): void {
    // Tests fill memory given back, as glibc's MALLOC_PERTURB_ does: whatever still reads it (a
    // socket write queued past its hold) then sends or stores the pattern, and checksums fail.
    if (POISON) buf.fill(0xdb);
    if (buf.length !== this.size || this.free.length >= this.keep) return;
    this.free.push(buf);
    if (!this.trimmer) {
      // Only what was given back after this point can be unused for the whole period.
      this.lowWater = this.free.length;
      this.trimmer = setInterval(() => this.trim(), this.trimMs);
      this.trimmer.unref();
    }
  }

  private trim(): void {
    this.free.splice(0, this.lowWater);
    this.lowWater = this.free.length;
    if (this.free.length === 0) {
      clearInterval(this.trimmer);
      this.trimmer = undefined;
    }
  }
}
