/**
 * The clients of the fault-injection run and what they remember. Each client, one operation at a
 * time, creates checksummed record files (rec/<id>, the id and the sha256 of the body inside),
 * renames and deletes them, and appends fixed-size checksummed records to a few shared log files
 * (logs/L<n>). Every operation goes to the history with its start, end and result; the model keeps,
 * per record and per append, what an acknowledgement promised (a failed operation leaves the
 * outcome open: either way is allowed, but nothing else).
 *
 * Two kinds of clients: the library (client/mount/share-connection.ts, the reconnecting
 * connection the mount uses) and a FUSE mount (fs/promises on `abaca mount`).
 */
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { OP } from '../../backends/replicated/protocol/opcodes.ts';
import type { Attr } from '../../backends/replicated/protocol/types.ts';
import type { ShareConnection } from '../../client/mount/share-connection.ts';
import { rng } from '../backends/replicated/helpers.ts';
import { errCode } from '../fuse/helpers.ts';

export const LOGS = 3;
/** Bytes of one appended record: "<client>:<seq>:<filler>:<sha256 prefix, 16 hex>\n". */
export const APPEND_SIZE = 128;

export interface OpEvent {
  client: string;
  share: string;
  op: 'create' | 'append' | 'rename' | 'unlink';
  path: string;
  start: number;
  end: number;
  /** 'ok' or the error code. */
  result: string;
  message?: string;
  /** The client connected anew while the operation ran (so it may have sent it twice). */
  reconnected?: boolean;
}

export interface RecordModel {
  id: string;
  share: string;
  sha: string;
  /** What was written (an unacknowledged create may have left a prefix of it, even nothing). */
  content: Buffer;
  /** The create: acknowledged or not. */
  acked: boolean;
  /** Names it may have now (one, unless a rename failed). */
  names: Set<string>;
  /** A failed create or unlink: it may be gone. */
  mayBeAbsent: boolean;
  /** An acknowledged unlink: it must be gone. */
  deleted: boolean;
  renames: number;
}

export interface AppendModel {
  key: string;
  share: string;
  log: string;
  acked: boolean;
  event?: OpEvent;
}

/** What all clients did: shared by the checks. */
export class History {
  readonly events: OpEvent[] = [];
  readonly records = new Map<string, RecordModel>();
  readonly appends = new Map<string, AppendModel>();
  constructor(public t0: number) {}
  now(): number {
    return Date.now() - this.t0;
  }
}

/** Body of record `id`: its id, the sha256 of the body, the body. */
export function recordContent(id: string, body: string): { content: Buffer; sha: string } {
  const sha = createHash('sha256').update(body).digest('hex');
  return { content: Buffer.from(`${id}\n${sha}\n${body}`), sha };
}

/** Parses a record file: null when it is not a well-formed record. */
export function parseRecord(data: Buffer): { id: string; sha: string; ok: boolean } | null {
  const s = data.toString('utf8');
  const a = s.indexOf('\n');
  const b = s.indexOf('\n', a + 1);
  if (a < 0 || b < 0) return null;
  const id = s.slice(0, a);
  const sha = s.slice(a + 1, b);
  const body = s.slice(b + 1);
  return { id, sha, ok: createHash('sha256').update(body).digest('hex') === sha };
}

export function appendRecord(key: string, filler: string): Buffer {
  const head = `${key}:`;
  const fill = filler.repeat(Math.ceil(APPEND_SIZE / filler.length)).slice(0, APPEND_SIZE - head.length - 18);
  const body = head + fill;
  const sum = createHash('sha256').update(body).digest('hex').slice(0, 16);
  const rec = Buffer.from(`${body}:${sum}\n`);
  if (rec.length !== APPEND_SIZE) throw new Error(`append record of ${rec.length} bytes`);
  return rec;
}

/** Splits a log into records: the keys of the well-formed ones, and what is wrong with the others. */
export function parseLog(data: Buffer): { keys: string[]; bad: string[] } {
  const keys: string[] = [];
  const bad: string[] = [];
  if (data.length % APPEND_SIZE !== 0) bad.push(`length ${data.length} is not a multiple of ${APPEND_SIZE}`);
  for (let off = 0; off + APPEND_SIZE <= data.length; off += APPEND_SIZE) {
    const s = data.toString('utf8', off, off + APPEND_SIZE);
    const m = /^(.*):([0-9a-f]{16})\n$/s.exec(s);
    const ok = m && createHash('sha256').update(m[1]!).digest('hex').slice(0, 16) === m[2];
    if (!ok) {
      bad.push(`record at ${off} is torn or corrupt: ${JSON.stringify(s.slice(0, 40))}…`);
      continue;
    }
    const parts = m[1]!.split(':');
    keys.push(`${parts[0]}:${parts[1]}`);
  }
  return { keys, bad };
}

/** The file operations a client offers, by share-relative path. */
export interface FileOps {
  /** Creates `p` exclusively with `data`, durable (fsync/close) before it returns. */
  create(p: string, data: Buffer): Promise<void>;
  /** Appends `data` at the end of `p` and makes it durable. */
  append(p: string, data: Buffer): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(p: string): Promise<void>;
  /** Connections made so far, where the client can tell (a mount's are its own). */
  connects?(): number;
}

/** How long a library client tries to take a log's flock before the append fails with EAGAIN. */
const FLOCK_WAIT_MS = 5000;

/**
 * Through the reconnecting connection, as the mount sends them (one request each). Appends are
 * made under an exclusive flock of the log (non-blocking, tried again while another client holds
 * it), as a program sharing a log would; the O_APPEND write is what keeps records whole, the lock
 * takes its part in the faults (a share server that dies or moves drops its locks).
 */
export function libraryOps(conn: ShareConnection, owner: string): FileOps {
  const fids = new Map<string, string>();
  const lock = async (p: string, type: 'w' | 'u'): Promise<void> => {
    let fid = fids.get(p);
    if (fid === undefined) {
      fid = ((await conn.call(OP.getattr, { path: p })).header['attr'] as Attr).id;
      fids.set(p, fid);
    }
    await conn.call(OP.lock, { path: p, fid, owner, kind: 'flock', start: 0, end: -1, pid: 0, type });
  };
  return {
    create: async (p, data) => {
      await conn.call(OP.create, { path: p, mode: 0o644, excl: true, trunc: true, sync: true }, data);
    },
    append: async (p, data) => {
      const until = Date.now() + FLOCK_WAIT_MS;
      for (;;) {
        try {
          await lock(p, 'w');
          break;
        } catch (err) {
          if ((err as { code?: string }).code !== 'EAGAIN' || Date.now() > until) throw err;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      try {
        await conn.call(OP.write, { path: p, off: 0, append: true, sync: true }, data);
      } finally {
        await lock(p, 'u').catch(() => {});
      }
    },
    rename: async (from, to) => {
      await conn.call(OP.rename, { path: from, newPath: to });
    },
    unlink: async (p) => {
      await conn.call(OP.unlink, { path: p });
    },
    connects: () => conn.connects,
  };
}

/** Through a FUSE mount at `dir`: open/write/fsync/close as a program would. */
export function mountOps(dir: string): FileOps {
  const full = (p: string) => path.join(dir, p);
  const writeDurable = async (p: string, flags: string, data: Buffer): Promise<void> => {
    const fh = await fsp.open(full(p), flags, 0o644);
    let closed = false;
    try {
      await fh.write(data, 0, data.length);
      await fh.sync();
      closed = true;
      await fh.close();
    } finally {
      if (!closed) await fh.close().catch(() => {});
    }
  };
  return {
    create: (p, data) => writeDurable(p, 'wx', data),
    append: (p, data) => writeDurable(p, 'a', data),
    rename: (from, to) => fsp.rename(full(from), full(to)),
    unlink: (p) => fsp.unlink(full(p)),
  };
}

/** Thrown (as the result) when an operation takes longer than the client's own timeout. */
export const HUNG = 'HUNG';

export class Client {
  private readonly rand: () => number;
  private seq = 0;
  ops = 0;
  acked = 0;
  /** Operations still running when the run ended (a hung one stays here). */
  running = 0;

  constructor(
    readonly name: string,
    readonly share: string,
    private readonly fops: FileOps,
    private readonly h: History,
    seed: number,
    /** An operation that takes longer than this is a hung client. */
    readonly timeoutMs: number,
  ) {
    this.rand = rng(seed);
  }

  private int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  private filler(n: number): string {
    let s = '';
    while (s.length < n) s += Math.floor(this.rand() * 2 ** 32).toString(36);
    return s.slice(0, n);
  }

  /** Runs `fn`, records it; resolves with the result ('ok' or a code), HUNG after the timeout. */
  private async op(
    kind: OpEvent['op'],
    p: string,
    fn: () => Promise<void>,
    seen?: (ev: OpEvent) => void,
  ): Promise<string> {
    this.ops++;
    this.running++;
    const ev: OpEvent = {
      client: this.name,
      share: this.share,
      op: kind,
      path: p,
      start: this.h.now(),
      end: -1,
      result: '',
    };
    this.h.events.push(ev);
    seen?.(ev);
    const connects = this.fops.connects?.();
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<string>((r) => {
      timer = setTimeout(() => r(HUNG), this.timeoutMs);
    });
    const done = fn().then(
      () => 'ok',
      (err: unknown) => {
        ev.message = (err as Error).message;
        return errCode(err);
      },
    );
    const result = await Promise.race([done, hung]);
    clearTimeout(timer);
    ev.end = this.h.now();
    ev.result = result;
    if (connects !== undefined && this.fops.connects!() !== connects) ev.reconnected = true;
    if (result === HUNG) {
      ev.message = `no answer after ${this.timeoutMs} ms`;
      return result; // stays running: the worker stops here
    }
    this.running--;
    if (result === 'ok') this.acked++;
    return result;
  }

  async run(go: () => boolean): Promise<void> {
    while (go()) {
      const r = await this.step();
      if (r === HUNG) return;
    }
  }

  /** Records whose state is known (one name, surely there): the ones to rename or delete. */
  private known(): RecordModel[] {
    const out: RecordModel[] = [];
    for (const r of this.h.records.values())
      if (
        r.share === this.share &&
        r.id.startsWith(`${this.name}-`) &&
        !r.mayBeAbsent &&
        !r.deleted &&
        r.names.size === 1
      )
        out.push(r);
    return out;
  }

  private async step(): Promise<string> {
    const x = this.rand();
    const known = this.known();
    if (x < 0.4 || known.length < 3) return this.create();
    if (x < 0.7) return this.append();
    const r = known[this.int(known.length)]!;
    return x < 0.85 ? this.rename(r) : this.unlink(r);
  }

  private async create(): Promise<string> {
    const id = `${this.name}-${this.seq++}`;
    const p = `rec/${id}`;
    const { content, sha } = recordContent(id, this.filler(100 + this.int(4000)));
    const r: RecordModel = {
      id,
      share: this.share,
      sha,
      content,
      acked: false,
      names: new Set([p]),
      mayBeAbsent: true,
      deleted: false,
      renames: 0,
    };
    this.h.records.set(`${this.share}/${id}`, r);
    const res = await this.op('create', p, () => this.fops.create(p, content));
    if (res === 'ok') {
      r.mayBeAbsent = false;
      r.acked = true;
    }
    return res;
  }

  private async append(): Promise<string> {
    const key = `${this.name}.${this.seq++}`;
    const log = `logs/L${this.int(LOGS)}`;
    const a: AppendModel = { key: `${this.name}:${key.split('.')[1]}`, share: this.share, log, acked: false };
    this.h.appends.set(`${this.share}/${a.key}`, a);
    const data = appendRecord(a.key, this.filler(40));
    const res = await this.op(
      'append',
      log,
      () => this.fops.append(log, data),
      (ev) => {
        a.event = ev;
      },
    );
    if (res === 'ok') a.acked = true;
    return res;
  }

  private async rename(r: RecordModel): Promise<string> {
    const from = [...r.names][0]!;
    const to = `rec/${r.id}~${++r.renames}`;
    const res = await this.op('rename', from, () => this.fops.rename(from, to));
    if (res === 'ok') r.names = new Set([to]);
    else r.names.add(to);
    return res;
  }

  private async unlink(r: RecordModel): Promise<string> {
    const p = [...r.names][0]!;
    const res = await this.op('unlink', p, () => this.fops.unlink(p));
    if (res === 'ok') {
      r.deleted = true;
      r.names = new Set();
    }
    r.mayBeAbsent = true;
    return res;
  }
}

/** What a client run in another process sends back at its end. */
export interface ClientReport {
  name: string;
  ops: number;
  acked: number;
  running: number;
  events: OpEvent[];
  records: Array<Omit<RecordModel, 'content' | 'names'> & { content: string; names: string[] }>;
  appends: AppendModel[];
}

export function reportOf(c: Client, h: History): ClientReport {
  return {
    name: c.name,
    ops: c.ops,
    acked: c.acked,
    running: c.running,
    events: h.events,
    records: [...h.records.values()].map((r) => ({
      ...r,
      content: r.content.toString('base64'),
      names: [...r.names],
    })),
    appends: [...h.appends.values()],
  };
}

/** Adds another process's client history to `h` (times share the same t0). */
export function mergeReport(h: History, rep: ClientReport): void {
  h.events.push(...rep.events);
  for (const r of rep.records)
    h.records.set(`${r.share}/${r.id}`, {
      ...r,
      content: Buffer.from(r.content, 'base64'),
      names: new Set(r.names),
    });
  for (const a of rep.appends) {
    // the event a points to is the same one as in rep.events (JSON keeps no identity)
    const ev = rep.events.find(
      (e) => e.op === 'append' && a.event && e.start === a.event.start && e.client === a.event.client,
    );
    h.appends.set(`${a.share}/${a.key}`, { ...a, event: ev });
  }
}
