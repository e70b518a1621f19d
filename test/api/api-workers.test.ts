import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import knexFactory, { type Knex } from 'knex';
import { tempDir } from '../helpers/db.ts';
import {
  REPO_ROOT,
  requestPasswordToken,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from '../helpers/process.ts';

/**
 * ABACA_API_WORKERS: one abaca-server serving the API from several processes on one address
 * (api/cluster.ts). Needs PostgreSQL; the refusal without it is shown on any machine.
 */
const PG_URL = process.env.TEST_DATABASE_URL;
const SKIP = PG_URL
  ? false
  : 'needs TEST_DATABASE_URL (PostgreSQL): several API processes cannot share the embedded PGlite database';
const PASSWORD = 'api-workers-admin-password';

/** The pids of a process's live children, from /proc. */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('more than one API process without PostgreSQL is refused with a message naming DATABASE_URL', async () => {
  const data = tempDir('abaca-workers-pglite');
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ABACA_DATA_DIR: data.path, ABACA_API_WORKERS: '2' };
    delete env.DATABASE_URL;
    const child = spawn(process.execPath, ['bin/abaca-server.js'], { cwd: REPO_ROOT, env, stdio: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(
      stderr,
      /ABACA_API_WORKERS: more than one API process needs PostgreSQL \(set DATABASE_URL\)/,
    );
    for (const bad of ['0', 'two', '1.5', '65']) {
      const r = spawn(process.execPath, ['bin/abaca-server.js'], {
        cwd: REPO_ROOT,
        env: { ...env, ABACA_API_WORKERS: bad },
        stdio: 'pipe',
      });
      let err = '';
      r.stderr.on('data', (d) => {
        err += d;
      });
      assert.equal(await new Promise((resolve) => r.once('exit', resolve)), 1, bad);
      assert.match(err, /ABACA_API_WORKERS must be/, bad);
    }
  } finally {
    data.remove();
  }
});

describe('two API processes on one address', { skip: SKIP }, () => {
  const dbName = `abaca_test_workers_${randomBytes(4).toString('hex')}`;
  let data: ReturnType<typeof tempDir>;
  let admin: Knex;
  let server: ServerProcess;
  let token: string;

  before(async () => {
    data = tempDir('abaca-workers');
    admin = knexFactory({ client: 'pg', connection: PG_URL as string, pool: { min: 0, max: 1 } });
    await admin.raw(`CREATE DATABASE ${dbName}`);
    const u = new URL(PG_URL as string);
    u.pathname = `/${dbName}`;
    server = await startServerProcess({
      DATABASE_URL: u.toString(),
      ABACA_DATA_DIR: data.path,
      ABACA_ADMIN_PASSWORD: PASSWORD,
      ABACA_API_WORKERS: '2',
      // The primary's children are then only its API processes (solo storage would add four).
      ABACA_BACKENDS: JSON.stringify([
        { name: 'local', driver: 'local', options: { rootDir: `${data.path}/local`, capacityGiB: 10 } },
      ]),
    });
    const res = await requestPasswordToken(server.url, PASSWORD);
    assert.equal(res.status, 201);
    token = res.headers.get('x-subject-token') as string;
  });

  after(async () => {
    await server?.stop('SIGKILL');
    for (const pid of children(server?.child.pid ?? 0)) process.kill(pid, 'SIGKILL');
    await admin?.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin?.destroy();
    data?.remove();
  });

  const h = () => ({ 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': '2.72' });
  const requestsCounted = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const m = /^abaca_http_requests_total\{method="GET",route="\/v2",status="200"\} (\d+)/m.exec(text);
    return Number(m?.[1] ?? 0);
  };

  test('the primary announces once, runs two processes, and the API works through them', async () => {
    assert.match(server.stdout(), /abaca-server listening on http:\/\/127\.0\.0\.1:\d+ \(2 API processes\)/);
    assert.equal(server.stdout().match(/abaca-server listening on/g)?.length, 1);
    assert.equal(children(server.child.pid as number).length, 2);
    const res = await fetch(`${server.url}/v2/shares`, {
      method: 'POST',
      headers: { ...h(), 'content-type': 'application/json' },
      body: JSON.stringify({ share: { size: 1, share_proto: 'NFS', name: 'through-workers' } }),
    });
    const body = await res.text();
    assert.equal(res.status, 200, body);
    const id = (JSON.parse(body) as { share: { id: string } }).share.id;
    const status = await waitFor('the share to be available', 30_000, async () => {
      const s = (await (await fetch(`${server.url}/v2/shares/${id}`, { headers: h() })).json()) as {
        share: { status: string };
      };
      return s.share.status === 'creating' ? undefined : s.share.status;
    });
    assert.equal(status, 'available');
  });

  test('/metrics counts the requests of every process, whichever one answers the scrape', async () => {
    const before = await requestsCounted();
    // Separate connections (fetch without keep-alive reuse across these) land on both processes.
    await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${server.url}/v2`, { headers: { connection: 'close' } })),
    );
    for (let i = 0; i < 4; i++) assert.equal((await requestsCounted()) - before, 20);
  });

  test('a killed API process is replaced and the address keeps answering', async () => {
    const [victim] = children(server.child.pid as number);
    process.kill(victim as number, 'SIGKILL');
    const replaced = await waitFor('a replacement process', 30_000, async () => {
      const now = children(server.child.pid as number);
      return now.length === 2 && !now.includes(victim as number) ? now : undefined;
    });
    assert.equal(replaced.length, 2);
    assert.match(server.stdout(), /"msg":"API process died"/);
    await waitFor('the replacement to answer', 30_000, async () => {
      const results = await Promise.all(
        Array.from({ length: 6 }, () =>
          fetch(`${server.url}/v2`, { headers: { connection: 'close' } }).then(
            (r) => r.status,
            () => 0,
          ),
        ),
      );
      return results.every((s) => s === 200) ? true : undefined;
    });
  });

  test('SIGTERM stops every process and the primary exits 0', async () => {
    const workers = children(server.child.pid as number);
    assert.equal(await server.stop('SIGTERM'), 0);
    for (const pid of workers)
      assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `API process ${pid} still running`);
  });
});
