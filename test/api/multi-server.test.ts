import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import knexFactory, { type Knex } from 'knex';
import { tempDir } from '../helpers/db.ts';
import { requestPasswordToken, type ServerProcess, startServerProcess, waitFor } from '../helpers/process.ts';

/**
 * Two abaca-server processes on one PostgreSQL database, both serving the API and both running the
 * task worker, with one `local` backend of the same name over the same directory (how a shared
 * backend looks to two servers). Shows that they split the work, that no task runs twice, and that
 * a server killed with SIGKILL in the middle of a task leaves nothing stuck: the other server
 * reclaims the task once its lease runs out.
 */
const PG_URL = process.env.TEST_DATABASE_URL;
const SKIP = PG_URL
  ? false
  : 'needs TEST_DATABASE_URL (PostgreSQL): PGlite is embedded in one process and cannot be shared by two servers';

const PASSWORD = 'multi-server-admin-password';
const LEASE_SECONDS = 4;
const FIRST_BATCH = 40;
const SECOND_BATCH = 10;

interface LogLine {
  msg?: string;
  kind?: string;
  resource_id?: string;
  attempt?: number;
}

/** The JSON log lines a server printed, with the given message. */
function logged(server: ServerProcess, msg: string): LogLine[] {
  return server
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.msg === msg);
}

/** The share creates a server's worker finished: share id → attempts the task took. */
function createsDone(server: ServerProcess): LogLine[] {
  return logged(server, 'worker: task done').filter((l) => l.kind === 'share.create');
}

describe('two server processes sharing one PostgreSQL database', { skip: SKIP }, () => {
  const dbName = `abaca_test_multi_${randomBytes(4).toString('hex')}`;
  let shared: ReturnType<typeof tempDir>;
  let dataA: ReturnType<typeof tempDir>;
  let dataB: ReturnType<typeof tempDir>;
  let admin: Knex;
  let db: Knex;
  let a: ServerProcess;
  let b: ServerProcess;
  let token: string;
  const created: string[] = [];

  before(async () => {
    shared = tempDir('abaca-multi-backend');
    dataA = tempDir('abaca-multi-a');
    dataB = tempDir('abaca-multi-b');
    admin = knexFactory({ client: 'pg', connection: PG_URL as string, pool: { min: 0, max: 1 } });
    await admin.raw(`CREATE DATABASE ${dbName}`);
    const u = new URL(PG_URL as string);
    u.pathname = `/${dbName}`;
    db = knexFactory({ client: 'pg', connection: u.toString(), pool: { min: 0, max: 2 } });
    const env = (data: string) => ({
      DATABASE_URL: u.toString(),
      ABACA_DATA_DIR: data,
      ABACA_ADMIN_PASSWORD: PASSWORD,
      ABACA_TASK_LEASE_SECONDS: String(LEASE_SECONDS),
      ABACA_BACKENDS: JSON.stringify([
        { name: 'shared', driver: 'local', options: { rootDir: shared.path, capacityGiB: 1000 } },
      ]),
    });
    // Started together on an empty database: both migrate and bootstrap at once.
    [a, b] = await Promise.all([startServerProcess(env(dataA.path)), startServerProcess(env(dataB.path))]);
    token = await issueToken(a.url);
    // Tokens are signed with keys kept in the database: one server's token is good on the other.
    const res = await fetch(`${b.url}/v2/quota-sets/${await projectId()}`, {
      method: 'PUT',
      headers: headers(),
      body: JSON.stringify({ quota_set: { shares: -1, gigabytes: -1 } }),
    });
    assert.equal(res.status, 200, await res.text());
  });

  after(async () => {
    await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')]);
    await db?.destroy();
    await admin?.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin?.destroy();
    for (const d of [shared, dataA, dataB]) d?.remove();
  });

  const headers = () => ({
    'content-type': 'application/json',
    'X-Auth-Token': token,
    'X-OpenStack-Manila-API-Version': '2.72',
  });

  async function issueToken(url: string): Promise<string> {
    const res = await requestPasswordToken(url, PASSWORD);
    assert.equal(res.status, 201);
    return res.headers.get('x-subject-token') as string;
  }

  async function projectId(): Promise<string> {
    const res = await fetch(`${a.url}/identity/v3/auth/tokens`, {
      headers: { 'X-Auth-Token': token, 'X-Subject-Token': token },
    });
    return ((await res.json()) as { token: { project: { id: string } } }).token.project.id;
  }

  /** Creates `count` shares, the i-th through server a when i is even and b when odd, all at once. */
  async function createAlternating(count: number, label: string): Promise<string[]> {
    const ids = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const res = await fetch(`${(i % 2 === 0 ? a : b).url}/v2/shares`, {
          method: 'POST',
          headers: headers(),
          body: JSON.stringify({ share: { size: 1, share_proto: 'NFS', name: `${label}-${i}` } }),
        });
        const text = await res.text();
        assert.equal(res.status, 200, text);
        return (JSON.parse(text) as { share: { id: string } }).share.id;
      }),
    );
    created.push(...ids);
    return ids;
  }

  /** Every share, as server `via` lists it. */
  async function statuses(via: ServerProcess): Promise<Map<string, string>> {
    const res = await fetch(`${via.url}/v2/shares/detail`, { headers: headers() });
    assert.equal(res.status, 200);
    const { shares } = (await res.json()) as { shares: { id: string; status: string }[] };
    return new Map(shares.map((s) => [s.id, s.status]));
  }

  async function allAvailable(via: ServerProcess, ids: string[], timeoutMs: number): Promise<void> {
    let last = new Map<string, string>();
    await waitFor(`${ids.length} shares to become available`, timeoutMs, async () => {
      last = await statuses(via);
      return ids.every((id) => last.get(id) === 'available') ? true : undefined;
    }).catch((err: Error) => {
      const stuck = ids.filter((id) => last.get(id) !== 'available').map((id) => `${id}: ${last.get(id)}`);
      throw new Error(`${err.message}; not available: ${stuck.join(', ')}`);
    });
  }

  test(`${FIRST_BATCH} shares created through alternating servers: all available, each create ran once, both servers worked`, {
    timeout: 120_000,
  }, async () => {
    const ids = await createAlternating(FIRST_BATCH, 'split');
    await allAvailable(b, ids, 60_000);

    const doneA = createsDone(a);
    const doneB = createsDone(b);
    const done = [...doneA, ...doneB];
    // Exactly one finished create per share, claimed once (attempt 1): no task was run twice.
    assert.deepEqual(done.map((l) => l.resource_id).sort(), [...ids].sort());
    assert.deepEqual(
      done.filter((l) => l.attempt !== 1),
      [],
      'a task was claimed more than once',
    );
    assert.ok(doneA.length > 0, `server a ran no create (b ran ${doneB.length})`);
    assert.ok(doneB.length > 0, `server b ran no create (a ran ${doneA.length})`);
    assert.deepEqual([...logged(a, 'worker: task failed'), ...logged(b, 'worker: task failed')], []);
    // Finished tasks are deleted; nothing is left queued or running.
    assert.deepEqual(await db('tasks').select('id', 'state', 'resource_id'), []);

    // On the shared backend: one directory per share, each with its metadata, and the export
    // location both servers report is that directory.
    const onDisk = readdirSync(path.join(shared.path, 'shares')).sort();
    assert.deepEqual(onDisk, [...ids].sort());
    for (const id of ids) assert.ok(existsSync(path.join(shared.path, 'shares', id, 'share.json')), id);
    const some = ids[FIRST_BATCH - 1] as string;
    for (const via of [a, b]) {
      const res = await fetch(`${via.url}/v2/shares/${some}/export_locations`, { headers: headers() });
      const { export_locations } = (await res.json()) as { export_locations: { path: string }[] };
      assert.deepEqual(
        export_locations.map((e) => e.path),
        [path.join(shared.path, 'shares', some, 'data')],
      );
    }
  });

  test('SIGKILL of one server in the middle of a task: the other reclaims it after the lease, nothing stays in creating', {
    timeout: 120_000,
  }, async () => {
    // Hold the worker of each server inside its final transaction (after the backend created the
    // share, before the share is marked available): recording export locations waits on this lock.
    const blocker = await db.transaction();
    let released = false;
    try {
      await blocker.raw('LOCK TABLE share_export_locations IN EXCLUSIVE MODE');
      const ids = await createAlternating(SECOND_BATCH, 'kill');
      // Both workers hold tasks (each blocked on the lock, renewing its lease); with up to
      // ABACA_WORKER_CONCURRENCY tasks each, between them they hold the whole batch.
      const held = await waitFor('both workers to hold the batch', 30_000, async () => {
        const running: { id: string; resource_id: string; claimed_by: string }[] = await db('tasks')
          .where({ state: 'running' })
          .select('id', 'resource_id', 'claimed_by');
        const holders = new Set(running.map((t) => t.claimed_by));
        return holders.size === 2 && running.length === SECOND_BATCH ? running : undefined;
      });
      await b.stop('SIGKILL');
      await blocker.commit();
      released = true;

      await allAvailable(a, ids, 60_000);
      const doneA = createsDone(a);
      const doneB = createsDone(b);
      // The tasks b was holding when it died: a finished them on a second claim, which the claim
      // query allows only once b's lease has run out (b renews it no more).
      const reclaimed = doneA
        .filter((l) => l.attempt === 2)
        .map((l) => l.resource_id as string)
        .sort();
      const heldBy = (holder: string) =>
        held
          .filter((t) => t.claimed_by === holder)
          .map((t) => t.resource_id)
          .sort();
      const holders = [...new Set(held.map((t) => t.claimed_by))];
      assert.ok(
        holders.some((h) => JSON.stringify(heldBy(h)) === JSON.stringify(reclaimed)),
        `a reclaimed exactly what one worker held: ${JSON.stringify({ reclaimed, held })}`,
      );
      assert.ok(reclaimed.length > 0);
      for (const id of reclaimed)
        assert.ok(!doneB.some((l) => l.resource_id === id), 'b never finished a task it died with');
      // Every share of both batches was created exactly once, except the reclaimed ones, whose second
      // run found the share already on the backend (creates are idempotent) and recorded it.
      const batch = [...doneA, ...doneB].filter((l) => ids.includes(l.resource_id as string));
      assert.deepEqual(batch.map((l) => l.resource_id).sort(), [...ids].sort());
      assert.deepEqual(
        batch
          .filter((l) => l.attempt !== 1)
          .map((l) => l.resource_id)
          .sort(),
        reclaimed,
      );
      assert.deepEqual(await db('tasks').select('id', 'state', 'resource_id'), []);
      assert.deepEqual(readdirSync(path.join(shared.path, 'shares')).sort(), [...created].sort());
      const all = await statuses(a);
      assert.deepEqual(
        created.filter((id) => all.get(id) !== 'available'),
        [],
        'every share of both batches is available',
      );
    } finally {
      if (!released) await blocker.rollback();
    }
  });
});
