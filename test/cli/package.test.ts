import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, test } from 'node:test';
import { tempDir } from '../helpers/db.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { parseOpenrc } from './helpers.ts';

// What `npm pack` makes installs and runs with no development dependency: no tsx, no TypeScript,
// no sources. The tarball is installed into an empty project with `npm ci --omit=dev --offline`
// from a lock file made of this checkout's (the package itself, then the locked versions of its
// runtime dependencies): the same files a registry install would fetch, from npm's cache, so the
// test needs no network (a registry `npm install` of the tarball took about a minute, most of it
// metadata requests). Then the installed `abaca` and `abaca-server` run: --help, and a real start
// on a fresh PGlite data dir that `abaca share list` talks to with the openrc it wrote.
const work = tempDir('abaca-package');
const app = path.join(work.path, 'app');
let server: ChildProcess | null = null;

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  work.remove();
});

/** Only PATH (this node first) and HOME (npm's cache): nothing of the test runner leaks in. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: process.env.HOME ?? work.path,
    LANG: 'C.UTF-8',
    ...extra,
  };
}

function run(cmd: string, args: string[], env: Record<string, string>, cwd = app) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function buildIsCurrent(): boolean {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', 'import("./bin/entry.js").then((m) => console.log(m.buildIsCurrent()))'],
    { cwd: REPO_ROOT, encoding: 'utf8', env: cleanEnv() },
  );
  return out.trim() === 'true';
}

/** A lock file for an empty project that depends on the tarball: this checkout's runtime part. */
function appLock(tarball: string): void {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8'));
  const spec = `file:${path.relative(app, tarball)}`;
  const packages: Record<string, unknown> = {
    '': { name: 'abaca-package-test', dependencies: { abaca: spec } },
    'node_modules/abaca': {
      version: pkg.version,
      resolved: spec,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [where, entry] of Object.entries(
    lock.packages as Record<string, { dev?: boolean; link?: boolean }>,
  ))
    if (where.startsWith('node_modules/') && !entry.dev && !entry.link) packages[where] = entry;
  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'abaca-package-test', private: true, dependencies: { abaca: spec } }),
  );
  writeFileSync(
    path.join(app, 'package-lock.json'),
    JSON.stringify({ name: 'abaca-package-test', lockfileVersion: 3, requires: true, packages }),
  );
}

test('npm pack makes a package that installs without dev dependencies and runs abaca and abaca-server', {
  timeout: 240_000,
}, async (t) => {
  const started = Date.now();
  const lap = (what: string) => t.diagnostic(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // npm ci builds dist/ (prepare); a checkout with newer sources is built here first. The pack
  // itself skips prepare so the test does not compile twice.
  if (!buildIsCurrent()) {
    execFileSync(process.execPath, ['scripts/build.mjs'], {
      cwd: REPO_ROOT,
      stdio: 'ignore',
      env: cleanEnv(),
    });
    lap('build');
  }
  const packed = await run(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', work.path],
    cleanEnv(),
    REPO_ROOT,
  );
  assert.equal(packed.code, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  const files = info!.files.map((f) => f.path);
  assert.ok(files.includes('dist/cli/main.js'), 'the CLI bundle is in the package');
  assert.ok(files.includes('dist/api/main.js'));
  assert.deepEqual(
    files.filter((f) => f.endsWith('.ts') || f.startsWith('test/') || f.startsWith('node_modules/')),
    [],
    'no sources, tests or dependencies in the package',
  );
  lap('npm pack');

  execFileSync('mkdir', ['-p', app]);
  appLock(path.join(work.path, info!.filename));
  const installed = await run(
    'npm',
    ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund', '--loglevel=error'],
    cleanEnv(),
  );
  assert.equal(installed.code, 0, `npm ci of the packed package failed:\n${installed.stderr}`);
  lap('npm ci --omit=dev --offline');
  const resolveFromApp = createRequire(path.join(app, 'index.js'));
  for (const dev of ['tsx', 'typescript', 'esbuild'])
    assert.throws(() => resolveFromApp.resolve(dev), `${dev} is not installed`);
  assert.ok(!existsSync(path.join(app, 'node_modules/abaca/cli')), 'no TypeScript sources');
  const bin = (name: string) => path.join(app, 'node_modules/.bin', name);

  const help = await run(bin('abaca'), ['--help'], cleanEnv());
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: abaca \[options\] \[command\]/);
  assert.match(help.stdout, /--os-cacert <ca-bundle-file>/);
  const serverHelp = await run(bin('abaca-server'), ['--help'], cleanEnv());
  assert.equal(serverHelp.code, 0, serverHelp.stderr);
  assert.match(serverHelp.stdout, /^Usage: abaca-server/);

  // A real start: migrations, the solo-mode bricks and share server, all from the package.
  const data = path.join(work.path, 'data');
  server = spawn(bin('abaca-server'), [], {
    cwd: app,
    env: cleanEnv({
      ABACA_DATA_DIR: data,
      ABACA_LISTEN: '127.0.0.1:0',
      ABACA_ADMIN_PASSWORD: 'package-test-password',
      ABACA_LOG_LEVEL: 'warn',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  server.stdout!.on('data', (d) => {
    out += d;
  });
  server.stderr!.on('data', (d) => {
    out += d;
  });
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (/abaca-server listening on http:\/\//.test(out)) resolve();
    };
    server!.stdout!.on('data', check);
    server!.once('exit', (code) => reject(new Error(`abaca-server exited with ${code}:\n${out}`)));
  });
  lap('abaca-server listening');
  const openrc = parseOpenrc(path.join(data, 'openrc'));
  const list = await run(
    bin('abaca'),
    ['share', 'list', '-f', 'json'],
    cleanEnv({ ...openrc, HOME: work.path, XDG_CACHE_HOME: path.join(work.path, 'cache') }),
  );
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), []);
  const table = await run(
    bin('abaca'),
    ['share', 'type', 'list'],
    cleanEnv({ ...openrc, HOME: work.path, XDG_CACHE_HOME: path.join(work.path, 'cache') }),
  );
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^\+-+\+/, 'a table (cli-table3, loaded from the installed dependencies)');
  assert.match(table.stdout, /\| default /);
  lap('abaca share list with the openrc');
});
