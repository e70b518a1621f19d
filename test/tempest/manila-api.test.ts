/**
 * Manila's own conformance suite against abaca: the API tests of manila-tempest-plugin (Debian's
 * `tempest` and `manila-tempest-plugin` packages) run against an abaca-server process on loopback
 * (on a fresh PostgreSQL database when TEST_DATABASE_URL is set, else on PGlite), with dynamic credentials made through abaca's Keystone API. test/tempest/tempest.conf is the
 * configuration (a DHSS=False cloud, one NFS backend); test/tempest/exclude-list.txt names the
 * tests left out, each with its reason (docs/conformance.md has the counts).
 *
 * By default (CI) the run covers the API tests that need no backend work beyond what a few seconds
 * allow, with concurrency 4; ABACA_TEMPEST=full runs every API test the configuration enables, and
 * ABACA_TEMPEST_REGEX=… runs the tests matching a regex instead (for a hand run on one area).
 * ABACA_TEMPEST_KEEP=1 keeps the workspace (tempest.log, the stestr repository) for reading.
 * Any failing test fails this file, with the failures' names and the totals in the message.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import { tempDir } from '../helpers/db.ts';
import { COMPAT_ADMIN_PASSWORD } from '../helpers/openstack.ts';
import { type ServerProcess, startServerProcess } from '../helpers/process.ts';

const TEMPEST = '/usr/bin/tempest';
const PLUGIN = '/usr/lib/python3/dist-packages/manila_tempest_tests';
const here = path.dirname(fileURLToPath(import.meta.url));

function tempestSkip(): string | false {
  if (existsSync(TEMPEST) && existsSync(PLUGIN)) return false;
  if (process.env.CI)
    throw new Error(
      `${TEMPEST} or ${PLUGIN} is missing in CI: .ci/run must install tempest manila-tempest-plugin`,
    );
  return 'needs Debian tempest and manila-tempest-plugin (apt-get install tempest manila-tempest-plugin)';
}

/**
 * The CI selection: the plugin's API tests (minus the excluded ones) whose class names say they
 * need no share on a backend or only a few. The full run adds the rest (access rules by microversion,
 * snapshots, shares from snapshots, quotas with shares …), several minutes more on a shared machine.
 */
const API = '^manila_tempest_tests\\.tests\\.api\\.';
const mode = process.env.ABACA_TEMPEST_REGEX ? 'regex' : process.env.ABACA_TEMPEST === 'full' ? 'full' : 'ci';
const regex = process.env.ABACA_TEMPEST_REGEX ?? (mode === 'full' ? API : readCiRegex());

function readCiRegex(): string {
  const lines = readFileSync(path.join(here, 'ci-include.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  return `${API}(${lines.join('|')})`;
}

const skip = tempestSkip();
const work = tempDir('abaca-tempest');
const data = tempDir('abaca-tempest-data');
let server: ServerProcess;

/**
 * With TEST_DATABASE_URL (a real PostgreSQL server, CI's second pass) the server runs on a fresh
 * database of its own there, dropped afterwards, so runs never share state; otherwise on its
 * embedded PGlite in the data directory.
 */
const PG_URL = process.env.TEST_DATABASE_URL;
const dbName = `abaca_test_tempest_${randomBytes(4).toString('hex')}`;
let pgAdmin: Knex | undefined;

async function serverDatabase(): Promise<Record<string, string>> {
  if (!PG_URL) return {};
  pgAdmin = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
  await pgAdmin.raw(`CREATE DATABASE ${dbName}`);
  const u = new URL(PG_URL);
  u.pathname = `/${dbName}`;
  return { DATABASE_URL: u.toString() };
}

before(async () => {
  if (skip) return;
  server = await startServerProcess({
    ABACA_DATA_DIR: data.path,
    ABACA_ADMIN_PASSWORD: COMPAT_ADMIN_PASSWORD,
    ABACA_LOG_LEVEL: 'warn',
    ...(await serverDatabase()),
  });
});
after(async () => {
  await server?.stop();
  await pgAdmin?.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await pgAdmin?.destroy();
  data.remove();
  if (process.env.ABACA_TEMPEST_KEEP) process.stdout.write(`# tempest workspace kept in ${work.path}\n`);
  else work.remove();
});

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd,
      env: {
        PATH: '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/root',
        LANG: 'C.UTF-8',
        TEMPEST_CONFIG_DIR: path.join(cwd, 'etc'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => resolve({ code, out })); // 'close': all of its output has been read
  });
}

const database = PG_URL ? 'PostgreSQL' : 'PGlite';

test(`manila-tempest-plugin API tests (${mode}, ${database})`, { skip, timeout: 40 * 60_000 }, async () => {
  // A workspace as `tempest init` makes one, without registering it in ~/.tempest.
  const ws = work.path;
  mkdirSync(path.join(ws, 'etc'));
  writeFileSync(
    path.join(ws, '.stestr.conf'),
    '[DEFAULT]\ntest_path=/usr/lib/python3/dist-packages/tempest/test_discover\n' +
      'top_dir=/usr/lib/python3/dist-packages/tempest\ngroup_regex=([^\\.]*\\.)*\n',
  );
  const conf = readFileSync(path.join(here, 'tempest.conf'), 'utf8')
    .replaceAll('@URL@', server.url)
    .replaceAll('@ADMIN_PASSWORD@', COMPAT_ADMIN_PASSWORD);
  writeFileSync(path.join(ws, 'etc', 'tempest.conf'), conf);
  const started = Date.now();
  const res = await run(
    TEMPEST,
    [
      'run',
      '--concurrency',
      process.env.ABACA_TEMPEST_CONCURRENCY ?? '4',
      '--regex',
      regex,
      '--exclude-list',
      path.join(here, 'exclude-list.txt'),
    ],
    ws,
  );
  const seconds = Math.round((Date.now() - started) / 1000);
  const totals = /Totals\n=+\n([\s\S]*?)Sum of execute time/.exec(res.out)?.[1]?.trim() ?? '(no totals)';
  const failed = [...res.out.matchAll(/^\{\d+\} (\S+) \[[^\]]*\] \.\.\. FAILED$/gm)].map((m) => m[1]);
  process.stdout.write(`# tempest (${mode}, ${database}, ${seconds} s):\n${totals.replace(/^/gm, '#   ')}\n`);
  assert.ok(/Ran: [1-9]/.test(totals), `tempest ran no test:\n${res.out.slice(-4000)}`);
  assert.equal(
    res.code,
    0,
    `${failed.length} tempest test(s) failed:\n${failed.join('\n')}\n${totals}\n` +
      `(ABACA_TEMPEST_KEEP=1 keeps the workspace and its tempest.log)\n${res.out.slice(-6000)}`,
  );
});
