import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import knexFactory, { type Knex } from 'knex';
import { tempDir } from '../helpers/db.ts';
import { requestPasswordToken, type ServerProcess, startServerProcess, waitFor } from '../helpers/process.ts';

/**
 * Invariant 4 for the API tier: two abaca-server processes on one PostgreSQL database, one of them
 * killed with SIGKILL while its worker is inside the backend call of a share create, share delete,
 * snapshot create, snapshot delete, extend, shrink and revert. The other process takes every task
 * over once its lease has run out and finishes it: the resource reaches the status the operation
 * leads to, no task is left, quota usage equals what the rows say, and the storage matches.
 *
 * Both processes use one `local` backend over one directory (a memory backend lives in one process
 * and could not show the survivor continuing the dead one's work), slowed down so that the kill
 * lands inside the call. Two rounds, the victim's backend configured differently:
 *   1. `delayWhen: after` — the victim has changed the storage but not recorded it: the re-run
 *      meets work already done (the idempotency a re-run needs);
 *   2. `delayWhen: before` — the victim dies before touching the storage: the re-run does it all.
 * The process that takes over is paused (SIGSTOP) while the operations are started and claimed,
 * so which process holds which task is not left to chance; it is let go once the victim is dead.
 */
const PG_URL = process.env.TEST_DATABASE_URL;
const SKIP = PG_URL
  ? false
  : 'needs TEST_DATABASE_URL (PostgreSQL): two server processes cannot share PGlite, which is embedded in one process';

const PASSWORD = 'api-takeover-admin-password';
const LEASE_SECONDS = 2;
/** How long each backend call of a task waits: long enough to see the victim hold its tasks and kill it. */
const DELAY_MS = 4000;
const DELAYED_OPS = [
  'createShare',
  'deleteShare',
  'extendShare',
  'shrinkShare',
  'createSnapshot',
  'deleteSnapshot',
  'revertToSnapshot',
] as const;
const KINDS = [
  'share.create',
  'share.delete',
  'snapshot.create',
  'snapshot.delete',
  'share.extend',
  'share.shrink',
  'share.revert',
] as const;
type Kind = (typeof KINDS)[number];

interface LogLine {
  msg?: string;
  kind?: string;
  resource_id?: string;
  attempt?: number;
  worker_id?: string;
}

const logLines = (server: ServerProcess): LogLine[] =>
  server
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

/** The id of a server process's task worker (tasks.claimed_by), from its start-up log line. */
function workerIdOf(server: ServerProcess): string {
  const line = logLines(server).find((l) => l.msg === 'worker: started');
  assert.ok(line?.worker_id, `no 'worker: started' line in the server's log:\n${server.stdout()}`);
  return line.worker_id;
}

/** The storage when the victim died: whether its backend calls had acted yet. */
interface AtKill {
  extendedSize: number;
  deletedShareThere: boolean;
  newSnapshotThere: boolean;
}

/** What one round works on: resources made beforehand, one per operation that needs one. */
interface Fixture {
  del: string;
  snap: string;
  sdel: string;
  sdelSnap: string;
  ext: string;
  shr: string;
  rev: string;
  revSnap: string;
}

describe('a killed API process leaves nothing stuck: the other takes its tasks over', { skip: SKIP }, () => {
  const dbName = `abaca_test_takeover_${randomBytes(4).toString('hex')}`;
  const dirs: ReturnType<typeof tempDir>[] = [];
  let shared: string;
  let admin: Knex;
  let db: Knex;
  let dbUrl: string;
  const servers: ServerProcess[] = [];
  let token: string;
  const fixtures: Fixture[] = [];
  /** Round one's processes: the victim's backend waits after acting, the survivor's before. */
  let firstVictim: ServerProcess;
  let firstSurvivor: ServerProcess;

  const env = (delayWhen: 'before' | 'after') => {
    const data = tempDir('abaca-takeover-data');
    dirs.push(data);
    return {
      DATABASE_URL: dbUrl,
      ABACA_DATA_DIR: data.path,
      ABACA_ADMIN_PASSWORD: PASSWORD,
      ABACA_TASK_LEASE_SECONDS: String(LEASE_SECONDS),
      ABACA_WORKER_CONCURRENCY: '16',
      ABACA_BACKENDS: JSON.stringify([
        {
          name: 'shared',
          driver: 'local',
          options: {
            rootDir: shared,
            capacityGiB: 1000,
            delays: Object.fromEntries(DELAYED_OPS.map((op) => [op, DELAY_MS])),
            delayWhen,
          },
        },
      ]),
    };
  };

  async function start(delayWhen: 'before' | 'after'): Promise<ServerProcess> {
    const server = await startServerProcess(env(delayWhen));
    servers.push(server);
    return server;
  }

  const headers = () => ({
    'content-type': 'application/json',
    'X-Auth-Token': token,
    'X-OpenStack-Manila-API-Version': '2.72',
  });

  async function call(
    via: ServerProcess,
    method: string,
    route: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${via.url}${route}`, {
      method,
      headers: headers(),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async function expectStatus(
    via: ServerProcess,
    method: string,
    route: string,
    body: unknown,
    status: number,
  ): Promise<Record<string, unknown>> {
    const res = await call(via, method, route, body);
    assert.equal(res.status, status, `${method} ${route}: ${JSON.stringify(res.body)}`);
    return res.body;
  }

  const createShare = async (via: ServerProcess, name: string, size: number): Promise<string> => {
    const body = await expectStatus(
      via,
      'POST',
      '/v2/shares',
      { share: { size, share_proto: 'NFS', name } },
      200,
    );
    return (body.share as { id: string }).id;
  };

  const createSnapshot = async (via: ServerProcess, shareId: string): Promise<string> => {
    const body = await expectStatus(via, 'POST', '/v2/snapshots', { snapshot: { share_id: shareId } }, 202);
    return (body.snapshot as { id: string }).id;
  };

  /** A resource's status through `via`, or 'gone' once it answers 404. */
  async function statusOf(via: ServerProcess, what: 'shares' | 'snapshots', id: string): Promise<string> {
    const res = await call(via, 'GET', `/v2/${what}/${id}`);
    if (res.status === 404) return 'gone';
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body[what === 'shares' ? 'share' : 'snapshot'] as { status: string }).status;
  }

  async function allReach(
    via: ServerProcess,
    want: { what: 'shares' | 'snapshots'; id: string; status: string }[],
    timeoutMs: number,
  ): Promise<void> {
    let seen: string[] = [];
    await waitFor(`${want.length} resources to settle`, timeoutMs, async () => {
      seen = await Promise.all(want.map((w) => statusOf(via, w.what, w.id)));
      return want.every((w, i) => seen[i] === w.status) ? true : undefined;
    }).catch((err: Error) => {
      const off = want.map((w, i) => `${w.what}/${w.id}: ${seen[i]} (want ${w.status})`);
      throw new Error(`${err.message}; ${off.join(', ')}`);
    });
  }

  const dataDir = (shareId: string) => path.join(shared, 'shares', shareId, 'data');
  const backendSize = (shareId: string) =>
    (JSON.parse(readFileSync(path.join(shared, 'shares', shareId, 'share.json'), 'utf8')) as { size: number })
      .size;

  before(async () => {
    const dir = tempDir('abaca-takeover-backend');
    dirs.push(dir);
    shared = dir.path;
    admin = knexFactory({ client: 'pg', connection: PG_URL as string, pool: { min: 0, max: 1 } });
    await admin.raw(`CREATE DATABASE ${dbName}`);
    const u = new URL(PG_URL as string);
    u.pathname = `/${dbName}`;
    dbUrl = u.toString();
    db = knexFactory({ client: 'pg', connection: dbUrl, pool: { min: 0, max: 2 } });

    // The first victim (whose backend waits after acting) and its survivor (waiting before).
    const [a, b] = await Promise.all([start('after'), start('before')]);
    firstVictim = a;
    firstSurvivor = b;
    const res = await requestPasswordToken(a.url, PASSWORD);
    assert.equal(res.status, 201);
    token = res.headers.get('x-subject-token') as string;
    const made = await Promise.all(
      [1, 2].map(async (round) => {
        const [del, snap, sdel, ext, shr, rev] = await Promise.all(
          ['del', 'snap', 'sdel', 'ext', 'shr', 'rev'].map((n) =>
            createShare(a, `r${round}-${n}`, n === 'shr' ? 2 : 1),
          ),
        );
        return { del, snap, sdel, ext, shr, rev } as Record<string, string>;
      }),
    );
    const ids = made.flatMap((m) => Object.values(m));
    await allReach(
      a,
      ids.map((id) => ({ what: 'shares', id, status: 'available' })),
      DELAY_MS + 20_000,
    );
    for (const m of made) {
      writeFileSync(path.join(dataDir(m.rev as string), 'file.txt'), 'as at the snapshot');
      writeFileSync(path.join(dataDir(m.shr as string), 'small.txt'), 'fits in 1 GiB');
    }
    const snaps = await Promise.all(
      made.map(async (m) => ({
        sdelSnap: await createSnapshot(a, m.sdel as string),
        revSnap: await createSnapshot(a, m.rev as string),
      })),
    );
    await allReach(
      a,
      snaps
        .flatMap((s) => [s.sdelSnap, s.revSnap])
        .map((id) => ({ what: 'snapshots', id, status: 'available' })),
      DELAY_MS + 20_000,
    );
    for (const m of made) {
      writeFileSync(path.join(dataDir(m.rev as string), 'file.txt'), 'changed after the snapshot');
      writeFileSync(path.join(dataDir(m.rev as string), 'extra.txt'), 'written after the snapshot');
    }
    made.forEach((m, i) => {
      fixtures.push({ ...(m as unknown as Fixture), ...(snaps[i] as { sdelSnap: string; revSnap: string }) });
    });
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    await db?.destroy();
    await admin?.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin?.destroy();
    for (const d of dirs) d.remove();
  });

  /**
   * Starts the seven operations through `victim` while the survivor is paused (SIGSTOP: its worker
   * cannot claim), waits until the victim's worker holds all seven tasks inside the backend call,
   * kills the victim, lets the survivor go on, and waits for it to finish the operations.
   */
  async function round(
    victim: ServerProcess,
    survivor: ServerProcess,
    f: Fixture,
    victimDelays: 'before' | 'after',
  ): Promise<{ resources: Record<Kind, string>; newShare: string; newSnap: string; atKill: AtKill }> {
    survivor.child.kill('SIGSTOP');
    try {
      return await killVictim(victim, f, victimDelays);
    } finally {
      survivor.child.kill('SIGCONT');
    }
  }

  async function killVictim(
    victim: ServerProcess,
    f: Fixture,
    delayWhen: 'before' | 'after',
  ): Promise<{ resources: Record<Kind, string>; newShare: string; newSnap: string; atKill: AtKill }> {
    const [newShare, newSnap] = await Promise.all([
      createShare(victim, 'new', 1),
      createSnapshot(victim, f.snap),
      expectStatus(victim, 'DELETE', `/v2/shares/${f.del}`, undefined, 202),
      expectStatus(victim, 'DELETE', `/v2/snapshots/${f.sdelSnap}`, undefined, 202),
      expectStatus(victim, 'POST', `/v2/shares/${f.ext}/action`, { extend: { new_size: 2 } }, 202),
      expectStatus(victim, 'POST', `/v2/shares/${f.shr}/action`, { shrink: { new_size: 1 } }, 202),
      expectStatus(victim, 'POST', `/v2/shares/${f.rev}/action`, { revert: { snapshot_id: f.revSnap } }, 202),
    ]);
    const resources: Record<Kind, string> = {
      'share.create': newShare as string,
      'share.delete': f.del,
      'snapshot.create': newSnap as string,
      'snapshot.delete': f.sdelSnap,
      'share.extend': f.ext,
      'share.shrink': f.shr,
      'share.revert': f.rev,
    };
    const victimWorker = workerIdOf(victim);
    type Held = { kind: string; resource_id: string; claimed_by: string; state: string };
    const heldNow = (): Promise<Held[]> => db('tasks').select('kind', 'resource_id', 'claimed_by', 'state');
    const expected = KINDS.map((k) => `${k} ${resources[k]}`).sort();
    const describeHeld = (rows: Held[]) =>
      rows
        .filter((t) => t.state === 'running' && t.claimed_by === victimWorker)
        .map((t) => `${t.kind} ${t.resource_id}`)
        .sort();
    await waitFor('the victim to hold all seven tasks', 10_000, async () =>
      JSON.stringify(describeHeld(await heldNow())) === JSON.stringify(expected) ? true : undefined,
    );
    const storageNow = (): AtKill => ({
      extendedSize: backendSize(f.ext),
      deletedShareThere: existsSync(path.join(shared, 'shares', f.del)),
      newSnapshotThere: existsSync(path.join(shared, 'snapshots', newSnap as string, 'snapshot.json')),
    });
    // A claimed task is not yet inside its backend call (the worker reads its rows first). A backend
    // that waits after acting shows when its calls have acted; one that waits before acting is inside
    // the wait from the first millisecond of the call, which the DELAY_MS sleep leaves ample room for.
    if (delayWhen === 'after')
      await waitFor("the victim's backend calls to act", DELAY_MS / 2, async () => {
        const now = storageNow();
        return now.extendedSize === 2 && !now.deletedShareThere && now.newSnapshotThere ? true : undefined;
      });
    await victim.stop('SIGKILL');
    // All seven were still in the victim's hands (in the backend call) when it died.
    assert.deepEqual(
      describeHeld(await heldNow()),
      expected,
      'the victim finished tasks before it was killed',
    );
    // What the storage looked like when the victim died (the survivor is still paused).
    const atKill = storageNow();
    return { resources, newShare: newShare as string, newSnap: newSnap as string, atKill };
  }

  /** Waits for the survivor to finish what the victim held, on a second claim of each task. */
  async function takenOver(
    survivor: ServerProcess,
    f: Fixture,
    r: { resources: Record<Kind, string> },
  ): Promise<void> {
    const { resources } = r;

    const final: { what: 'shares' | 'snapshots'; id: string; status: string }[] = [
      { what: 'shares', id: resources['share.create'], status: 'available' },
      { what: 'shares', id: f.del, status: 'gone' },
      { what: 'snapshots', id: resources['snapshot.create'], status: 'available' },
      { what: 'snapshots', id: f.sdelSnap, status: 'gone' },
      { what: 'shares', id: f.ext, status: 'available' },
      { what: 'shares', id: f.shr, status: 'available' },
      { what: 'shares', id: f.rev, status: 'available' },
      { what: 'snapshots', id: f.revSnap, status: 'available' },
    ];
    await allReach(survivor, final, LEASE_SECONDS * 1000 + DELAY_MS + 20_000);

    // The survivor finished each task on a second claim (the first was the victim's).
    const survivorWorker = workerIdOf(survivor);
    const keys = new Set(KINDS.map((k) => `${k} ${resources[k]}`));
    const done = logLines(survivor)
      .filter((l) => l.msg === 'worker: task done' && l.worker_id === survivorWorker)
      .filter((l) => keys.has(`${l.kind} ${l.resource_id}`))
      .map((l) => `${l.kind} ${l.resource_id} attempt ${l.attempt}`)
      .sort();
    assert.deepEqual(
      done,
      KINDS.map((k) => `${k} ${resources[k]} attempt 2`).sort(),
      'the survivor took over exactly the victim tasks',
    );
  }

  /** What must hold after any round: sizes, storage, quota usage, no tasks, no failures. */
  async function checkConsistent(
    survivor: ServerProcess,
    f: Fixture,
    r: { newShare: string; newSnap: string },
  ): Promise<void> {
    // Sizes the operations lead to, in the API and in the storage.
    const size = async (id: string) =>
      ((await expectStatus(survivor, 'GET', `/v2/shares/${id}`, undefined, 200)).share as { size: number })
        .size;
    assert.equal(await size(f.ext), 2);
    assert.equal(backendSize(f.ext), 2);
    assert.equal(await size(f.shr), 1);
    assert.equal(backendSize(f.shr), 1);
    assert.equal(await size(r.newShare), 1);
    assert.equal(backendSize(r.newShare), 1);
    assert.equal(
      existsSync(path.join(shared, 'shares', f.del)),
      false,
      'the deleted share is gone from storage',
    );
    assert.equal(
      existsSync(path.join(shared, 'snapshots', f.sdelSnap)),
      false,
      'the deleted snapshot is gone',
    );
    assert.ok(
      existsSync(path.join(shared, 'snapshots', r.newSnap, 'snapshot.json')),
      'the new snapshot is stored',
    );
    // The revert gave back the data as it was at the snapshot.
    assert.equal(readFileSync(path.join(dataDir(f.rev), 'file.txt'), 'utf8'), 'as at the snapshot');
    assert.equal(existsSync(path.join(dataDir(f.rev), 'extra.txt')), false);
    const locations = (await expectStatus(
      survivor,
      'GET',
      `/v2/shares/${r.newShare}/export_locations`,
      undefined,
      200,
    )) as { export_locations: { path: string }[] };
    assert.deepEqual(
      locations.export_locations.map((l) => l.path),
      [dataDir(r.newShare)],
    );

    // The storage holds exactly the shares and snapshots the database has.
    const shares: { id: string; size: number; status: string; share_type_id: string; user_id: string }[] =
      await db('shares').select('id', 'size', 'status', 'share_type_id', 'user_id');
    const snapshots: { id: string; size: number; status: string; share_id: string; user_id: string }[] =
      await db('share_snapshots').select('id', 'size', 'status', 'share_id', 'user_id');
    assert.deepEqual(readdirSync(path.join(shared, 'shares')).sort(), shares.map((s) => s.id).sort());
    assert.deepEqual(readdirSync(path.join(shared, 'snapshots')).sort(), snapshots.map((s) => s.id).sort());
    for (const s of shares) assert.equal(backendSize(s.id), s.size, `share ${s.id}'s size on storage`);
    assert.deepEqual(
      [...shares, ...snapshots].filter((x) => x.status !== 'available').map((x) => `${x.id}: ${x.status}`),
      [],
      'nothing left in a transitional or error status',
    );
    assert.deepEqual(await db('tasks').select('id', 'kind', 'state', 'claimed_by'), [], 'no task left');
    assert.deepEqual(await db('quota_reservations').select('id', 'resource'), [], 'no reservation left');

    // Usage, in every scope it is counted in (project, share type, user), equals what the rows add up to.
    const usages: {
      share_type_id: string;
      user_id: string;
      resource: string;
      in_use: number;
      reserved: number;
    }[] = await db('quota_usages').whereIn('resource', [
      'shares',
      'gigabytes',
      'snapshots',
      'snapshot_gigabytes',
    ]);
    const typeOf = new Map(shares.map((s) => [s.id, s.share_type_id]));
    const expectedUse = (u: (typeof usages)[number]): number => {
      const inScope = <T extends { user_id: string }>(rows: T[], type: (r: T) => string | undefined) =>
        rows.filter(
          (x) =>
            (u.share_type_id === '' || type(x) === u.share_type_id) &&
            (u.user_id === '' || x.user_id === u.user_id),
        );
      const sh = inScope(shares, (s) => s.share_type_id);
      const sn = inScope(snapshots, (s) => typeOf.get(s.share_id));
      const sum = (rows: { size: number }[]) => rows.reduce((n, x) => n + x.size, 0);
      return { shares: sh.length, gigabytes: sum(sh), snapshots: sn.length, snapshot_gigabytes: sum(sn) }[
        u.resource as 'shares'
      ];
    };
    assert.ok(
      usages.filter((u) => u.share_type_id === '' && u.user_id === '').length === 4,
      'project usage rows for shares, gigabytes, snapshots and snapshot_gigabytes',
    );
    assert.deepEqual(
      usages
        .map((u) => `${u.resource} type=${u.share_type_id} user=${u.user_id}: ${u.in_use}/${u.reserved}`)
        .sort(),
      usages
        .map((u) => `${u.resource} type=${u.share_type_id} user=${u.user_id}: ${expectedUse(u)}/0`)
        .sort(),
    );

    // A takeover is not a failure: no user message says anything went wrong.
    const messages = await expectStatus(survivor, 'GET', '/v2/messages', undefined, 200);
    assert.deepEqual(messages.messages, []);
  }

  test('killed after the backend acted, before recording it: the other process finishes all seven operations', {
    timeout: 40_000,
  }, async () => {
    const [victim, survivor] = [firstVictim, firstSurvivor];
    const f = fixtures[0] as Fixture;
    const r = await round(victim, survivor, f, 'after');
    assert.deepEqual(
      r.atKill,
      { extendedSize: 2, deletedShareThere: false, newSnapshotThere: true },
      'the victim had acted on the storage',
    );
    await takenOver(survivor, f, r);
    await checkConsistent(survivor, f, r);
  });

  test('killed inside the backend call, before it acted: the other process does all seven operations', {
    timeout: 40_000,
  }, async () => {
    const victim = firstSurvivor;
    assert.ok(victim.child.exitCode === null, 'the first round left a process to be the victim');
    // The next survivor, started at leisure: it is paused while the victim takes the tasks.
    const survivor = await start('after');
    const f = fixtures[1] as Fixture;
    const r = await round(victim, survivor, f, 'before');
    assert.deepEqual(
      r.atKill,
      { extendedSize: 1, deletedShareThere: true, newSnapshotThere: false },
      'the victim had not acted on the storage yet',
    );
    await takenOver(survivor, f, r);
    await checkConsistent(survivor, f, r);
  });
});
