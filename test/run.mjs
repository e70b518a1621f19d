// `npm test`: every test/**/*.test.ts under node:test (tsx for TypeScript), three files at a time,
// the longest first (test/durations.json: seconds per file, from a run's report; a file not listed
// counts as long, so a new end-to-end suite does not end up last). Each file's TAP output is printed
// whole when it ends, with its time; at the end the slowest files, what failed again (the failing
// tests with their errors: a CI log is often read from its tail), and the totals, in node:test's
// summary lines.
//
// With TEST_DATABASE_URL (the second CI pass, on a real PostgreSQL), only the files that reach the
// test database run: a file whose imports (followed through test/ helpers) call createTestDb() or
// read TEST_DATABASE_URL. The others — the storage layer, and the suites that start server
// processes on their own embedded database — do the same thing whatever the variable says, and ran
// in the PGlite pass. Extra arguments are passed to node (e.g. --test-reporter=spec).
//
// Each file runs as `node --import tsx FILE`, not `node --test FILE`: node:test runs a file's tests
// and reports them the same way in both (TAP when piped, the same summary lines, exit code 1 on a
// failure or an error after a test), and --test only adds a parent process that spawns the file
// again, a second Node start with tsx per file. `node --import tsx --test FILE` is still how to
// run one file by hand.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testDir = path.join(root, 'test');

function testFiles(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return testFiles(p);
      return e.name.endsWith('.test.ts') ? [p] : [];
    })
    .sort();
}

const IMPORT = /(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]/g;
const usesDb = new Map();

/** Whether the file, or a test/ module it imports, calls createTestDb() or reads TEST_DATABASE_URL. */
function reachesDatabase(file, seen = new Set()) {
  if (usesDb.has(file)) return usesDb.get(file);
  if (seen.has(file) || !file.startsWith(testDir) || !fs.existsSync(file)) return false;
  seen.add(file);
  const src = fs.readFileSync(file, 'utf8');
  const defines = /export (async )?function createTestDb\b/.test(src);
  // test/helpers/db.ts itself (which defines createTestDb and reads the variable) is the provider,
  // not a user: importing its tempDir() does not make a file depend on the database.
  const code = src.replace(/^\s*(\/\/|\*).*$/gm, '');
  let hit = !defines && (/\bcreateTestDb\(/.test(code) || /TEST_DATABASE_URL/.test(code));
  for (const m of src.matchAll(IMPORT)) {
    if (hit) break;
    hit = reachesDatabase(path.resolve(path.dirname(file), m[1]), seen);
  }
  usesDb.set(file, hit);
  return hit;
}

// Manila's conformance suite (test/tempest) runs its server on PostgreSQL when TEST_DATABASE_URL is
// set, as a deployment would. Its CI selection takes minutes, so CI (which runs both passes) runs it
// in the PostgreSQL pass only; outside CI it runs in whichever pass is asked for.
const PG_ONLY_IN_CI = [path.join(testDir, 'tempest', 'manila-api.test.ts')];

let files = testFiles(testDir);
if (process.env.CI && !process.env.TEST_DATABASE_URL) {
  files = files.filter((f) => !PG_ONLY_IN_CI.includes(f));
  process.stdout.write(
    `# CI, PGlite pass: left out for the PostgreSQL pass: ${PG_ONLY_IN_CI.map((f) => path.relative(root, f)).join(', ')}\n`,
  );
}
if (process.env.TEST_DATABASE_URL) {
  const left = files.filter((f) => !reachesDatabase(f));
  files = files.filter((f) => reachesDatabase(f));
  process.stdout.write(
    `# TEST_DATABASE_URL is set: ${files.length} test files that use the test database run; ` +
      `${left.length} that do not (they ran in the PGlite pass) are left out:\n` +
      left.map((f) => `#   ${path.relative(root, f)}`).join('\n') +
      '\n',
  );
}

// Three files at once on the 2-core machines this runs on: the end-to-end files spend most of their
// time waiting (the openstack client's --wait polls every 5 s, server processes start), so a third
// file fills those waits. ABACA_TEST_CONCURRENCY overrides it.
const concurrency = Math.max(1, Number(process.env.ABACA_TEST_CONCURRENCY ?? '3') || 3);

/** Seconds per file as a past run measured them (relative paths); unknown files: UNKNOWN_S. */
const UNKNOWN_S = 120;
const durationsFile = path.join(testDir, 'durations.json');
const known = fs.existsSync(durationsFile) ? JSON.parse(fs.readFileSync(durationsFile, 'utf8')) : {};
const rel = (f) => path.relative(root, f);
const expected = (f) => known[rel(f)] ?? UNKNOWN_S;
files.sort((a, b) => expected(b) - expected(a) || a.localeCompare(b));

const SUMMARY = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'];
const totals = Object.fromEntries(SUMMARY.map((k) => [k, 0]));
const times = [];
const failed = [];
/** What each failed file said of its failures, printed again at the end (CI keeps the tail of a log). */
const failures = [];
/** Files that skipped tests, with how many: a failure in CI. */
const skippedIn = [];

/**
 * The `not ok` lines of a file's TAP output with their YAML blocks (error, expected, actual, stack),
 * up to the block's closing `...`; a file that failed without one gives its last lines instead.
 */
function failureLines(body) {
  const lines = body.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)not ok /.exec(lines[i]);
    if (!m) continue;
    const end = `${m[1]}  ...`;
    let j = i;
    while (j < lines.length - 1 && lines[j] !== end) j++;
    out.push(...lines.slice(i, j + 1));
    i = j;
  }
  return out.length > 0 ? out : lines.slice(-40);
}
const started = Date.now();
const children = new Set();

function runFile(file) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', ...process.argv.slice(2), rel(file)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Pooled memory is overwritten when it is given back, so that a use after that shows up as
      // wrong data in the tests that compare it (protocol/reused-buffers.ts).
      env: { ABACA_POISON_REUSED: '1', ...process.env },
    });
    children.add(child);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      const secs = (Date.now() - t0) / 1000;
      times.push([rel(file), secs]);
      // The file's own summary lines are summed into the run's; its other lines are printed as they are.
      const own = {};
      const body = out
        .split('\n')
        .filter((line) => {
          const m = /^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([\d.]+)$/.exec(line);
          if (m) own[m[1]] = Number(m[2]);
          return !m;
        })
        .join('\n');
      for (const k of SUMMARY) totals[k] += own[k] ?? 0;
      const ok = code === 0 && !signal;
      if (!ok) {
        failed.push(rel(file));
        failures.push(`# ---- ${rel(file)}:`, ...failureLines(body.trimEnd()));
      }
      // A file that failed with no failing test (an error after a test ended, a crash on import)
      // counts as one failure, as node --test counted it.
      if (!ok && !(own.fail > 0)) totals.fail += 1;
      if (own.skipped > 0) skippedIn.push(`${rel(file)} (${own.skipped})`);
      process.stdout.write(
        `# ---- ${rel(file)}: ${ok ? 'ok' : `FAILED (exit ${code ?? signal})`} in ${secs.toFixed(1)} s ` +
          `(${own.pass ?? 0} passed, ${own.fail ?? 0} failed, ${own.skipped ?? 0} skipped)\n${body.trimEnd()}\n`,
      );
      resolve();
    });
  });
}

for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    for (const c of children) c.kill(sig);
    process.exit(1);
  });

let next = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, files.length) }, async () => {
    while (next < files.length) await runFile(files[next++]);
  }),
);

times.sort((a, b) => b[1] - a[1]);
process.stdout.write(
  `# slowest files (seconds; test/durations.json takes these to order the next run):\n` +
    times
      .slice(0, 25)
      .map(([f, s]) => `#   ${s.toFixed(1).padStart(7)}  ${f}`)
      .join('\n') +
    '\n',
);
if (process.env.ABACA_TEST_DURATIONS_OUT)
  fs.writeFileSync(
    process.env.ABACA_TEST_DURATIONS_OUT,
    `${JSON.stringify(Object.fromEntries(times.map(([f, s]) => [f, Math.round(s)])), null, 2)}\n`,
  );
if (failed.length > 0)
  process.stdout.write(
    `# what failed, again (each file's output above has it in place):\n${failures.join('\n')}\n` +
      `# files that failed:\n${failed.map((f) => `#   ${f}`).join('\n')}\n`,
  );
for (const k of SUMMARY) process.stdout.write(`# ${k} ${totals[k]}\n`);
process.stdout.write(`# duration_ms ${Date.now() - started}\n`);
// CI installs everything the tests need (.ci/run), so a test that skips there hides a missing
// prerequisite: the run fails and names the files (each says why in its output above).
const skipsFail = Boolean(process.env.CI) && skippedIn.length > 0;
if (skipsFail)
  process.stdout.write(
    `# CI runs every test, but these files skipped some:\n${skippedIn.map((f) => `#   ${f}`).join('\n')}\n`,
  );
process.exit(failed.length > 0 || skipsFail ? 1 : 0);
