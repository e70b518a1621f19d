/**
 * `fs/promises` FileHandle look-alike over the path-based native protocol. Positions are tracked
 * here; append mode writes at the size this handle last saw (like NFS, concurrent appenders from
 * different handles can overwrite each other).
 */
import { ReplicatedError } from '../protocol/errors.ts';
import { OP } from '../protocol/opcodes.ts';
import type { Attr } from '../protocol/types.ts';
import type { ReplicatedClient } from './client.ts';

export const OPEN_FLAGS = ['r', 'r+', 'w', 'w+', 'wx', 'wx+', 'a', 'a+'] as const;
export type OpenFlags = (typeof OPEN_FLAGS)[number];

export class ReplicatedFileHandle {
  private closed = false;

  constructor(
    private readonly c: ReplicatedClient,
    readonly path: string,
    readonly flags: OpenFlags,
    private position: number,
    private appendAt: number,
  ) {}

  private check(write: boolean): void {
    if (this.closed) throw new ReplicatedError('EINVAL', 'file handle is closed');
    const canWrite = this.flags !== 'r';
    const canRead = this.flags === 'r' || this.flags.endsWith('+');
    if (write ? !canWrite : !canRead)
      throw new ReplicatedError('EACCES', `not opened for ${write ? 'writing' : 'reading'}`);
  }

  /** Reads into `buffer`; a null/undefined position reads at (and advances) the handle's position. */
  async read(
    buffer: Buffer,
    offset = 0,
    length = buffer.length - offset,
    position?: number | null,
  ): Promise<{ bytesRead: number; buffer: Buffer }> {
    this.check(false);
    const at = position ?? this.position;
    const data = await this.c.read(this.path, at, length);
    data.copy(buffer, offset);
    if (position === null || position === undefined) this.position += data.length;
    return { bytesRead: data.length, buffer };
  }

  /** Writes `data`; in append mode always at the end of the file. */
  async write(data: Buffer | string, position?: number | null): Promise<{ bytesWritten: number }> {
    this.check(true);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const append = this.flags.startsWith('a');
    const at = append ? this.appendAt : (position ?? this.position);
    const reply = (await this.c.call(OP.write, { path: this.path, off: at }, buf)).header;
    if (append) this.appendAt = Number(reply['size']);
    else if (position === null || position === undefined) this.position += buf.length;
    return { bytesWritten: buf.length };
  }

  async readFile(): Promise<Buffer> {
    this.check(false);
    return this.c.readFile(this.path);
  }

  async writeFile(data: Buffer | string): Promise<void> {
    this.check(true);
    await this.c.truncate(this.path, 0);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    await this.c.writeAt(this.path, 0, buf);
    this.appendAt = buf.length;
  }

  stat(): Promise<Attr> {
    return this.c.stat(this.path);
  }

  async truncate(len = 0): Promise<void> {
    this.check(true);
    await this.c.truncate(this.path, len);
    if (this.appendAt > len) this.appendAt = len;
  }

  chmod(mode: number): Promise<void> {
    return this.c.chmod(this.path, mode);
  }

  utimes(atimeMs: number, mtimeMs: number): Promise<void> {
    return this.c.utimes(this.path, atimeMs, mtimeMs);
  }

  /** Flushes this file on a majority of replicas. */
  sync(): Promise<void> {
    return this.c.fsync(this.path);
  }

  datasync(): Promise<void> {
    return this.sync();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
