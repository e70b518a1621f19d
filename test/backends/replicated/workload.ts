/**
 * A seeded mixed workload (creates, writes, truncates, renames, unlinks, mkdirs) run by one client
 * in its own directory, with a model of what every acknowledged operation left behind.
 */
import assert from 'node:assert/strict';
import type { ReplicatedClient } from '../../../backends/replicated/client/client.ts';
import { rng } from './helpers.ts';

export class Workload {
  readonly files = new Map<string, Buffer>();
  readonly dirs = new Set<string>();
  readonly failures: string[] = [];
  acked = 0;
  private readonly rand: () => number;
  private n = 0;

  constructor(
    private readonly c: ReplicatedClient,
    readonly root: string,
    seed: number,
  ) {
    this.rand = rng(seed);
  }

  private pick<T>(a: T[]): T | undefined {
    return a.length === 0 ? undefined : a[Math.floor(this.rand() * a.length)];
  }

  private bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.rand() * 256);
    return b;
  }

  async setup(): Promise<void> {
    await this.c.mkdir(this.root);
    this.dirs.add(this.root);
  }

  /** Runs `count` operations; `onOp` is called after each acknowledged one. */
  async run(count: number, onOp?: () => Promise<void> | void): Promise<void> {
    for (let i = 0; i < count; i++) {
      await this.step();
      this.acked++;
      await onOp?.();
    }
  }

  private async step(): Promise<void> {
    const r = this.rand();
    const files = [...this.files.keys()];
    const dirs = [...this.dirs];
    const c = this.c;
    if (r < 0.3 || files.length < 3) {
      const p = `${this.pick(dirs)!}/f${this.n++}`;
      const data = this.bytes(1 + Math.floor(this.rand() * 6000));
      await c.create(p, 0o644, true);
      this.files.set(p, Buffer.alloc(0));
      await c.write(p, 0, data);
      this.files.set(p, data);
    } else if (r < 0.55) {
      const p = this.pick(files)!;
      const cur = this.files.get(p)!;
      const off = Math.floor(this.rand() * (cur.length + 100));
      const data = this.bytes(1 + Math.floor(this.rand() * 3000));
      await c.write(p, off, data);
      const next = Buffer.alloc(Math.max(cur.length, off + data.length));
      cur.copy(next);
      data.copy(next, off);
      this.files.set(p, next);
    } else if (r < 0.68) {
      const p = this.pick(files)!;
      const cur = this.files.get(p)!;
      const size = Math.floor(this.rand() * (cur.length + 500));
      await c.truncate(p, size);
      const next = Buffer.alloc(size);
      cur.copy(next, 0, 0, Math.min(size, cur.length));
      this.files.set(p, next);
    } else if (r < 0.8) {
      const p = this.pick(files)!;
      const np = `${this.pick(dirs)!}/r${this.n++}`;
      await c.rename(p, np);
      this.files.set(np, this.files.get(p)!);
      this.files.delete(p);
    } else if (r < 0.92) {
      const p = this.pick(files)!;
      await c.unlink(p);
      this.files.delete(p);
    } else {
      const d = `${this.pick(dirs)!}/d${this.n++}`;
      await c.mkdir(d, { mode: 0o750 });
      this.dirs.add(d);
    }
  }

  /** Every acknowledged operation is visible through the share server. */
  async verify(c: ReplicatedClient = this.c): Promise<void> {
    for (const [p, data] of this.files) {
      const got = await c.readFile(p);
      assert.equal(got.length, data.length, `size of ${p}`);
      assert.ok(got.equals(data), `contents of ${p}`);
    }
    for (const d of this.dirs) {
      const names = new Set(await c.readdir(d));
      for (const [p] of this.files)
        if (p.slice(0, p.lastIndexOf('/')) === d) assert.ok(names.has(p.slice(d.length + 1)));
      for (const sd of this.dirs)
        if (sd !== d && sd.slice(0, sd.lastIndexOf('/')) === d) assert.ok(names.has(sd.slice(d.length + 1)));
      const expected = [...this.files.keys(), ...this.dirs].filter(
        (x) => x.slice(0, x.lastIndexOf('/')) === d,
      ).length;
      assert.equal(names.size, expected, `entries of ${d}`);
    }
  }
}
