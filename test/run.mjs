// `npm test`: every test/**/*.test.ts under node:test (tsx for TypeScript, two files at a time).
//
// With TEST_DATABASE_URL (the second CI pass, on a real PostgreSQL), only the files that reach the
// test database run: a file whose imports (followed through test/ helpers) call createTestDb() or
// read TEST_DATABASE_URL. The others — the storage layer, and the suites that start server
// processes on their own embedded database — do the same thing whatever the variable says, and ran
// in the PGlite pass. Extra arguments are passed to node --test (e.g. --test-reporter=spec).
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
const concurrency = process.env.ABACA_TEST_CONCURRENCY ?? '3';

const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    ...process.argv.slice(2),
    ...files.map((f) => path.relative(root, f)),
  ],
  { cwd: root, stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
