/**
 * The fault-injection run (issue 19): a seeded, randomized, Jepsen-style run. Clients (library
 * connections and FUSE mounts) create, rename and delete checksummed records and append to shared
 * logs while the nemesis kills, pauses and cuts off bricks and the share server, one at a time.
 * Then, all faults healed and heal info empty, the real state is checked: on a fresh client and on
 * every brick's disk. Used by test/faults/faults.test.ts (CI) and test/faults/main.ts (`npm run
 * faults`).
 */
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import { memoryOwnerStore } from '../../backends/replicated/cluster.ts';
import { createReplicatedBackend } from '../../backends/replicated/driver.ts';
import { OP } from '../../backends/replicated/protocol/opcodes.ts';
import type { Backend } from '../../backends/types.ts';
import { exportLocation } from '../../client/mount/mount.ts';
import { type ShareAddress, ShareConnection, shareAddressOf } from '../../client/mount/share-connection.ts';
import { readReplica, replicaDifferences, waitFor } from '../backends/replicated/helpers.ts';
import { FaultCluster, fuseSkip, netnsSkip } from './cluster.ts';
import { describeFault, FAULT_KINDS, type Fault, type FaultKind, runNemesis, schedule } from './nemesis.ts';
import {
  Client,
  type ClientReport,
  History,
  HUNG,
  LOGS,
  libraryOps,
  mergeReport,
  type OpEvent,
  parseLog,
  parseRecord,
} from './workload.ts';

export interface RunOptions {
  seed: number;
  /** Time the clients and the nemesis run (setup and checks come on top). */
  durationMs: number;
  log?: (msg: string) => void;
  /** The kinds of fault to draw from (default: all; partitions only where network namespaces work). */
  kinds?: readonly FaultKind[];
  /**
   * Three share servers under the cluster monitor (`--cluster`, owners in a memory table as the
   * API keeps them in PostgreSQL): a killed or paused share server's shares move to another, and
   * the clients follow. Otherwise one share server, restarted where the clients wait for it.
   */
  takeover?: boolean;
  /**
   * A share may go this long without a successful operation (default MAX_UNAVAILABLE_MS): one fault
   * at a time leaves a majority of bricks and a live share server, so a longer stall is a bug.
   */
  maxUnavailableMs?: number;
  /** Keep the bricks' directories when the run fails (printed). */
  keepOnFailure?: boolean;
}

export interface Problem {
  message: string;
  /**
   * A symptom of a mutation applied twice after its client sent it again (an append twice, an
   * O_EXCL create answering EEXIST, a rename or unlink answering ENOENT) while the client may have
   * re-sent it: what request ids (share-connection.ts, brick/recent-requests.ts) prevent. Labelled
   * in the output to point there.
   */
  resent: boolean;
}

export interface RunResult {
  seed: number;
  /** What is wrong (empty: the run passed). */
  problems: string[];
  ops: number;
  acked: number;
  faults: number;
  /** Faults in the schedule (all of them run unless the run ended early). */
  scheduled: number;
  /** Per share: the longest time without a successful operation, ms. */
  unavailableMs: Record<string, number>;
}

/** Errors a client may see while a fault lasts. */
export const EXPECTED_ERRORS = new Set(['ENOTCONN', 'EIO', 'EAGAIN']);
/** After a fault is healed, errors are still "during" it for this long (reconnects, brick timeouts). */
export const GRACE_MS = 5000;
const SHARES = ['fa', 'fb'];
/** Cluster monitor timing of the takeover mode (the driver's defaults are 500 and 3000 ms). */
const PROBE_MS = 500;
const FAILOVER_MS = 3000;
/**
 * Default bound on a share's unavailability: the longest pause of an owner (8 s) plus a reconnect,
 * with room for a loaded machine; a brick fault costs a brick timeout (3 s).
 */
export const MAX_UNAVAILABLE_MS = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Library connections: re-sent for 30 s (the mount's default), one request at most 10 s. */
const RETRY_MS = 30_000;
const REQUEST_MS = 10_000;

export async function runFaults(opts: RunOptions): Promise<RunResult> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const netns = netnsSkip();
  const fuse = fuseSkip;
  const nServers = opts.takeover ? 3 : 1;
  // Partitions need the namespaces; a share server is cut off only when there are others to take over.
  const kinds = (opts.kinds ?? FAULT_KINDS).filter(
    (k) => !(k.endsWith('partition') && netns) && !(k === 'server-partition' && nServers === 1),
  );
  const faults = schedule(opts.seed, opts.durationMs, kinds, nServers);
  log(
    `fault-injection run: seed ${opts.seed} (FAULTS_SEED=${opts.seed} reproduces it), ${opts.durationMs} ms`,
  );
  if (netns) log(`  no network partitions: ${netns}`);
  if (fuse) log(`  no FUSE mounts: ${fuse}`);
  log(`schedule (${faults.length} faults):`);
  if (opts.takeover)
    log(`  three share servers under the cluster monitor (probe ${PROBE_MS} ms, failover ${FAILOVER_MS} ms)`);
  const targets = opts.takeover ? SHARES : [];
  for (const f of faults) log(`  ${describeFault(f, targets)}`);

  const tSetup = Date.now();
  const cl = await FaultCluster.start({ netns: !netns, servers: nServers });
  let backend: Backend | undefined;
  const owners = memoryOwnerStore();
  /** The share server owning a share now (0 with a single share server). */
  const ownerOf = (s: string): number => {
    const at = owners.rows.get(s)?.server;
    return at === undefined ? 0 : Math.max(0, cl.serverAddrs.indexOf(at));
  };
  const owned = () => SHARES.map((s) => `${s} on share server ${ownerOf(s) + 1}`).join(', ');
  const h = new History(Date.now());
  const clients: Array<Pick<Client, 'name' | 'share' | 'ops' | 'acked' | 'running' | 'timeoutMs'>> = [];
  const conns: ShareConnection[] = [];
  const children: ChildProcess[] = [];
  const problems: Problem[] = [];
  let failed = true;
  try {
    const addresses = new Map<string, ShareAddress>();
    if (opts.takeover) {
      backend = createReplicatedBackend({
        name: 'faults',
        shareServers: cl.serverAddrs,
        adminToken: cl.adminToken,
        owners,
        probeMs: PROBE_MS,
        failoverMs: FAILOVER_MS,
      });
      await sleep(PROBE_MS * 3); // every share server answered the monitor once
      const pool = (await backend.stats()).pools[0]!.name;
      for (const s of SHARES) {
        const locs = await backend.createShare({
          id: s,
          size: 1,
          shareProto: 'NATIVE',
          projectId: 'faults',
          pool,
          specs: {},
        });
        addresses.set(s, shareAddressOf(locs)!);
      }
    } else {
      const admin = await cl.client();
      for (const s of SHARES) {
        await admin.createShare(s, 1 << 30);
        addresses.set(s, { host: '127.0.0.1', port: cl.serverPorts[0]!, share: s });
      }
      admin.close();
    }
    const open = async (share: string): Promise<ShareConnection> => {
      const c = await ShareConnection.open({
        ...addresses.get(share)!,
        adminToken: cl.adminToken,
        retryMs: RETRY_MS,
        requestTimeoutMs: REQUEST_MS,
      });
      conns.push(c);
      return c;
    };
    for (const s of SHARES) {
      const c = await open(s);
      await c.call(OP.mkdir, { path: 'rec', mode: 0o755 });
      await c.call(OP.mkdir, { path: 'logs', mode: 0o755 });
      for (let i = 0; i < LOGS; i++) await c.call(OP.create, { path: `logs/L${i}`, mode: 0o644, excl: true });
    }
    const libTimeout = RETRY_MS + REQUEST_MS + 10_000;
    const plan: Array<[string, string]> = [
      ['lib0', 'fa'],
      ['lib1', 'fa'],
      ['lib2', 'fb'],
    ];
    for (const [i, [name, share]] of plan.entries())
      clients.push(
        new Client(name, share, libraryOps(await open(share), name), h, opts.seed * 100 + i, libTimeout),
      );
    const libClients = [...clients] as Client[];
    const mounts: Array<{ name: string; share: string; dir: string; seed: number }> = [];
    if (!fuse)
      await Promise.all(
        SHARES.map(async (share, i) => {
          const m = await cl.mount(exportLocation(addresses.get(share)!), `fuse${i}`, RETRY_MS / 1000);
          mounts[i] = { name: `fuse${i}`, share, dir: m.dir, seed: opts.seed * 100 + 50 + i };
        }),
      );
    // the mount's own request timeout is 60 s, then it re-sends for retry_timeout
    const mountTimeout = 60_000 + RETRY_MS + 10_000;
    log(
      `cluster up in ${Date.now() - tSetup} ms: bricks ${cl.brickAddrs.join(', ')}; share servers ${cl.serverAddrs.join(', ')}`,
    );
    log(
      `clients: ${[...clients, ...mounts].map((c) => `${c.name} (${c.share})`).join(', ')}` +
        (mounts.length > 0
          ? ` (the fuse ones in processes of their own: ${mounts.map((m) => m.dir).join(', ')})`
          : ''),
    );

    if (opts.takeover) log(`owners: ${owned()}`);
    // ---- the run -------------------------------------------------------------------------------
    h.t0 = Date.now();
    const end = h.t0 + opts.durationMs;
    const go = () => Date.now() < end;
    const loops = libClients.map((c) => c.run(go));
    const remote = mounts.map((m) =>
      runRemote({ ...m, timeoutMs: mountTimeout, t0: h.t0, end }, mountTimeout + 15_000, children),
    );
    await runNemesis(
      cl,
      faults,
      () => h.now(),
      log,
      () => !go(),
      targets,
      ownerOf,
    );
    const tStop = h.now();
    // Clients finish their last operation (each bounded by its own timeout).
    await Promise.all(loops);
    for (const r of await Promise.all(remote)) {
      if ('error' in r) {
        problems.push({ message: r.error, resent: false });
        continue;
      }
      mergeReport(h, r);
      clients.push(r);
    }
    log(`[+${h.now()} ms] clients stopped (${h.now() - tStop} ms after the nemesis)`);
    for (const c of conns) c.close();

    // ---- heal, then the checks -----------------------------------------------------------------
    for (const s of SHARES) {
      const reader = await cl.client(undefined, ownerOf(s));
      try {
        await healed(reader, s, log);
      } finally {
        reader.close();
      }
    }
    log(
      `[+${h.now()} ms] heal info empty on ${SHARES.join(', ')}${opts.takeover ? `; owners: ${owned()}` : ''}`,
    );
    for (const s of SHARES) {
      const sc = await cl.client(s, ownerOf(s));
      try {
        checkView(`fresh client (${s})`, s, await clientView(sc), h, faults, problems);
      } finally {
        sc.close();
      }
      const states = cl.bricks.map((_, i) => ({
        index: i,
        label: `brick${i + 1}`,
        dir: cl.shareDir(i, s),
        entries: readReplica(cl.shareDir(i, s)),
      }));
      for (const d of replicaDifferences(states))
        problems.push({ message: `${s}: replicas differ: ${d.message}`, resent: false });
      for (const [i] of cl.bricks.entries())
        checkView(
          `brick${i + 1} disk (${s})`,
          s,
          diskView(path.join(cl.shareDir(i, s), 'data')),
          h,
          faults,
          problems,
        );
    }
    checkErrors(h, faults, problems);
    for (const c of clients)
      if (c.running > 0)
        problems.push({
          message: `${c.name}: an operation hung past the client's timeout (${c.timeoutMs} ms)`,
          resent: false,
        });
    const real = problems.map((p) => p.message);
    const resent = problems.filter((p) => p.resent).length;

    // ---- summary -------------------------------------------------------------------------------
    const gaps = unavailability(h, tStop);
    const unavailableMs = Object.fromEntries(Object.entries(gaps).map(([k, g]) => [k, g.ms]));
    const ops = clients.reduce((a, c) => a + c.ops, 0);
    const acked = clients.reduce((a, c) => a + c.acked, 0);
    const byKind = new Map<string, number>();
    for (const e of h.events)
      if (e.result !== 'ok') byKind.set(`${e.op} ${e.result}`, (byKind.get(`${e.op} ${e.result}`) ?? 0) + 1);
    log('summary:');
    log(
      `  seed ${opts.seed}, ${faults.filter((f) => f.end !== undefined).length} faults, ${ops} operations, ${acked} acknowledged`,
    );
    for (const c of clients) log(`  ${c.name} (${c.share}): ${c.ops} operations, ${c.acked} acknowledged`);
    log(`  errors: ${byKind.size === 0 ? 'none' : [...byKind].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
    // What each kind of error said most often (the share server's reason).
    for (const k of byKind.keys()) {
      const said = new Map<string, number>();
      for (const e of h.events)
        if (e.result !== 'ok' && `${e.op} ${e.result}` === k && e.message)
          said.set(e.message, (said.get(e.message) ?? 0) + 1);
      const top = [...said].sort((x, y) => y[1] - x[1])[0];
      if (top) log(`    ${k}, most often (×${top[1]}): ${top[0].slice(0, 200)}`);
    }
    const bound = opts.maxUnavailableMs ?? MAX_UNAVAILABLE_MS;
    for (const [s, g] of Object.entries(gaps)) {
      const during = faults.filter(
        (f) => f.start !== undefined && f.start <= g.to && (f.end ?? g.to) >= g.from,
      );
      const what =
        `share ${s}: longest time without a successful operation ${g.ms} ms (+${g.from}..+${g.to} ms` +
        `${during.length > 0 ? `, during fault ${during.map((f) => f.n).join(', ')}` : ''})`;
      log(`  ${what}`);
      if (g.ms > bound) real.push(`${what}: longer than ${bound} ms`);
    }
    const slowest = h.events
      .filter((e) => e.end >= 0)
      .sort((a, b) => b.end - b.start - (a.end - a.start))
      .slice(0, 3);
    for (const e of slowest)
      log(
        `  slow: ${e.client} ${e.op} ${e.path} took ${e.end - e.start} ms (+${e.start}..+${e.end} ms) → ${e.result}`,
      );
    log(`  total ${Date.now() - tSetup} ms`);
    if (real.length > 0) {
      log(
        `FAILED: ${real.length} problems (FAULTS_SEED=${opts.seed} reproduces the run)` +
          (resent > 0 ? `, ${resent} of them a re-sent mutation applied twice` : '') +
          ':',
      );
      for (const p of real.slice(0, 60)) log(`  ${p}`);
      if (real.length > 60) log(`  … and ${real.length - 60} more`);
    } else {
      failed = false;
      log(
        'OK: every acknowledged write is there once with its checksum, nothing else; replicas equal; ' +
          'heal info empty; no client hung; errors only during faults',
      );
    }
    return {
      seed: opts.seed,
      problems: real,
      ops,
      acked,
      faults: faults.filter((f) => f.end !== undefined).length,
      scheduled: faults.length,
      unavailableMs,
    };
  } finally {
    for (const c of conns) c.close();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await backend?.close();
    const keep = failed && opts.keepOnFailure === true;
    if (keep) log(`bricks kept in ${cl.dir}`);
    await cl.close(keep);
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Runs a FUSE client in a process of its own (fuse-client.ts) and resolves with its report, or
 * with an error when it gives none within `waitMs` after its end.
 */
function runRemote(
  a: { name: string; share: string; dir: string; seed: number; timeoutMs: number; t0: number; end: number },
  waitMs: number,
  children: ChildProcess[],
): Promise<(ClientReport & { share: string; timeoutMs: number }) | { error: string }> {
  const child = fork(path.join(here, 'fuse-client.ts'), [JSON.stringify(a)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => {
        child.kill('SIGKILL');
        resolve({ error: `${a.name}: no report ${waitMs} ms after the end: the client hung` });
      },
      a.end - Date.now() + waitMs,
    );
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve({ ...(m as ClientReport), share: a.share, timeoutMs: a.timeoutMs });
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ error: `${a.name}: its process ended (${code ?? sig}) without a report` });
    });
  });
}

/** Waits until every brick is connected and heal info is empty, nudging the heal. */
async function healed(admin: ReplicatedClient, share: string, log: (m: string) => void): Promise<void> {
  let lastKick = 0;
  try {
    await waitFor(
      async () => {
        const info = await admin.healInfo(share);
        if (!info.every((b) => b.connected)) return false;
        if (info.some((b) => b.count > 0)) {
          if (Date.now() - lastKick > 2000) {
            lastKick = Date.now();
            await admin.healNow(share);
          }
          return false;
        }
        return true;
      },
      60_000,
      `heal of ${share}`,
    );
  } catch (err) {
    const info = await admin.healInfo(share).catch(() => []);
    for (const b of info)
      log(
        `  ${share} ${b.addr} connected=${b.connected} count=${b.count}: ${b.entries
          .slice(0, 8)
          .map((e) => `${e.path || '<root>'}${e.splitBrain ? ' (split-brain)' : ''}`)
          .join(', ')}`,
      );
    throw err;
  }
}

export interface View {
  /** File name under rec/ → contents. */
  records: Map<string, Buffer>;
  /** File name under logs/ → contents. */
  logs: Map<string, Buffer>;
}

async function clientView(c: ReplicatedClient): Promise<View> {
  const v: View = { records: new Map(), logs: new Map() };
  for (const n of await c.readdir('rec')) v.records.set(n, await c.readFile(`rec/${n}`));
  for (const n of await c.readdir('logs')) v.logs.set(n, await c.readFile(`logs/${n}`));
  return v;
}

function diskView(data: string): View {
  const read = (d: string) =>
    new Map(
      fs.readdirSync(path.join(data, d)).map((n) => [n, fs.readFileSync(path.join(data, d, n))] as const),
    );
  return { records: read('rec'), logs: read('logs') };
}

/**
 * Records: every acknowledged one is there exactly once, under a name it may have, with its
 * checksum; an acknowledged delete stays deleted; nothing that was never written (an
 * unacknowledged create may have left a prefix of its record, even an empty file). Logs: every
 * record well-formed, every acknowledged append there exactly once, no append twice, none that was
 * never made.
 */
export function checkView(
  label: string,
  share: string,
  v: View,
  h: History,
  faults: Fault[],
  problems: Problem[],
): void {
  const add = (message: string, resent = false) => problems.push({ message: `${label}: ${message}`, resent });
  const seen = new Map<string, string[]>();
  for (const [name, data] of v.records) {
    const id = name.replace(/~\d+$/, '');
    const m = h.records.get(`${share}/${id}`);
    if (!m) {
      add(`rec/${name} holds ${data.length} bytes under the name of record ${id}, which was never written`);
      continue;
    }
    const rec = parseRecord(data);
    const partial =
      !m.acked && data.length < m.content.length && m.content.subarray(0, data.length).equals(data);
    if (!partial && (!rec || rec.id !== id || !rec.ok || rec.sha !== m.sha)) {
      add(`rec/${name} is not record ${id} with its checksum (${data.length} bytes)`);
      continue;
    }
    seen.set(id, [...(seen.get(id) ?? []), `rec/${name}`]);
  }
  for (const m of h.records.values()) {
    if (m.share !== share) continue;
    const at = seen.get(m.id) ?? [];
    if (at.length > 1) add(`record ${m.id} appears ${at.length} times: ${at.join(', ')}`);
    else if (at.length === 1 && m.deleted)
      add(`record ${m.id} was deleted (acknowledged) but is at ${at[0]}`);
    else if (at.length === 1 && !m.names.has(at[0]!))
      add(`record ${m.id} is at ${at[0]}, expected ${[...m.names].join(' or ')}`);
    else if (at.length === 0 && !m.mayBeAbsent)
      add(`acknowledged record ${m.id} is missing (expected at ${[...m.names].join(' or ')})`);
  }
  const count = new Map<string, number>();
  for (const [name, data] of v.logs) {
    const { keys, bad } = parseLog(data);
    for (const b of bad) add(`logs/${name}: ${b}`);
    for (const k of keys) {
      const a = h.appends.get(`${share}/${k}`);
      if (!a) add(`logs/${name}: append ${k} was never made`);
      else if (a.log !== `logs/${name}`) add(`logs/${name}: append ${k} was made to ${a.log}`);
      count.set(k, (count.get(k) ?? 0) + 1);
    }
  }
  for (const a of h.appends.values()) {
    if (a.share !== share) continue;
    const n = count.get(a.key) ?? 0;
    if (n > 1) {
      const resent = a.event !== undefined && mayBeResent(a.event, faults);
      add(
        `append ${a.key} appears ${n} times in ${a.log}${a.acked ? '' : ' (not acknowledged)'}` +
          (resent ? ` — ${RESENT}` : ''),
        resent,
      );
    }
    if (n === 0 && a.acked) add(`acknowledged append ${a.key} is missing from ${a.log}`);
  }
}

const RESENT = 'its client may have sent it again: applied twice? (request ids should prevent it)';

/** The faults whose window (plus GRACE_MS) overlaps the operation. */
function faultsDuring(e: OpEvent, faults: Fault[]): Fault[] {
  return faults.filter(
    (f) =>
      f.start !== undefined &&
      e.start <= (f.end ?? Number.POSITIVE_INFINITY) + GRACE_MS &&
      (e.end < 0 || e.end >= f.start),
  );
}

/**
 * The operation's client may have sent it twice: a library client says so (it connected anew
 * while the operation ran); for a mount (whose connection is in its own process), a kill of the
 * share server overlapped the operation.
 */
function mayBeResent(e: OpEvent, faults: Fault[]): boolean {
  if (e.client.startsWith('lib')) return e.reconnected === true;
  return faultsDuring(e, faults).some((f) => f.kind === 'server-kill');
}

/** Every error is ENOTCONN/EIO/EAGAIN, answered while a fault lasts (or within GRACE_MS after it). */
function checkErrors(h: History, faults: Fault[], problems: Problem[]): void {
  for (const e of h.events) {
    if (e.result === 'ok' || e.result === HUNG || e.end < 0) continue;
    // The client saw the error while a fault lasted (or just after): not one that outlived it.
    const during = faults.filter(
      (f) =>
        f.start !== undefined && e.end >= f.start && e.end <= (f.end ?? Number.POSITIVE_INFINITY) + GRACE_MS,
    );
    const desc = `${e.client} ${e.op} ${e.path} [+${e.start}..+${e.end} ms] answered ${e.result}: ${e.message ?? ''}`;
    if (!EXPECTED_ERRORS.has(e.result)) {
      const resent =
        mayBeResent(e, faults) &&
        ((e.op === 'create' && e.result === 'EEXIST') || (e.op !== 'create' && e.result === 'ENOENT'));
      problems.push({ message: resent ? `${desc} — ${RESENT}` : desc, resent });
    } else if (during.length === 0)
      problems.push({ message: `${desc} — answered outside every fault (+${GRACE_MS} ms)`, resent: false });
  }
}

/** Per share, the longest stretch (ms) in which no operation succeeded, over the clients' run. */
function unavailability(h: History, tEnd: number): Record<string, { ms: number; from: number; to: number }> {
  const out: Record<string, { ms: number; from: number; to: number }> = {};
  for (const s of SHARES) {
    const ends = h.events
      .filter((e: OpEvent) => e.share === s && e.result === 'ok')
      .map((e) => e.end)
      .sort((a, b) => a - b);
    let last = 0;
    out[s] = { ms: 0, from: 0, to: 0 };
    for (const t of [...ends, tEnd]) {
      if (t - last > out[s].ms) out[s] = { ms: t - last, from: last, to: t };
      last = Math.max(last, t);
    }
  }
  return out;
}
