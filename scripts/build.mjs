// `npm run build` (also npm ci's prepare step): compiles the server, storage daemons and CLI to plain
// JavaScript in dist/ with tsc (tsconfig.build.json), copies the other files of those folders that
// the code reads at run time (a .proto, say), bundles the CLI, and stamps the build for
// bin/entry.js. dist/ is made from scratch: a file left from a deleted source (a migration, say)
// must not be run.
//
// The CLI is a short-lived process whose start is most of its run: esbuild bundles cli/main.ts and
// what it imports (commander included) into dist/cli/main.js, which replaces tsc's file of that
// name, so `abaca` reads one file instead of dozens of modules. What only some commands need stays
// out of it: `import()`s become chunks of their own (dist/cli/chunks/: the FUSE client of `abaca
// mount`), and packages loaded through createRequire (yaml, cli-table3, nanospinner) are read from
// node_modules when a command uses them. The other bins (server, daemons, CSI) run tsc's files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const stamp = path.join(dist, '.build.json');
const started = new Date();

const config = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8'));
const folders = config.include;

fs.rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(
  process.execPath,
  [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  { cwd: root, stdio: 'inherit' },
);
if (tsc.status !== 0) {
  fs.rmSync(dist, { recursive: true, force: true });
  process.stderr.write('build: tsc failed; dist/ removed\n');
  process.exit(tsc.status ?? 1);
}

/** Files other than TypeScript and notes (.md) that a folder holds: data the code may read beside it. */
function copyAssets(rel) {
  const from = path.join(root, rel);
  if (!fs.existsSync(from)) return;
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const child = path.join(rel, e.name);
    if (e.isDirectory()) copyAssets(child);
    else if (!/\.(ts|md)$/.test(e.name)) {
      fs.mkdirSync(path.join(dist, rel), { recursive: true });
      fs.copyFileSync(path.join(root, child), path.join(dist, child));
    }
  }
}
for (const folder of folders) copyAssets(folder);

try {
  const esbuild = await import('esbuild');
  const { metafile } = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: 'cli/main.ts' },
    outdir: path.join(dist, 'cli'),
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // commander is CommonJS: its require() of node: modules needs a real require in an ES module.
    banner: {
      js: "import { createRequire as __abacaCreateRequire } from 'node:module'; const require = __abacaCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
    metafile: true,
  });
  // bin/entry.js judges the bundle by the stamp's inputs: everything in it must come from them.
  const outside = Object.keys(metafile.inputs).filter(
    (f) => !/(^|\/)node_modules\//.test(f) && !folders.some((dir) => f.startsWith(`${dir}/`)),
  );
  if (outside.length)
    throw new Error(`the CLI imports ${outside.join(', ')}: add its folder to tsconfig.build.json's include`);
} catch (err) {
  fs.rmSync(dist, { recursive: true, force: true });
  process.stderr.write(`build: bundling the CLI failed (${err.message}); dist/ removed\n`);
  process.exit(1);
}

// What bin/entry.js compares with: a source newer than the build's start means dist/ is stale. The
// lock file stands for the packages the CLI bundle holds a copy of.
const inputs = [...folders, 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];
fs.writeFileSync(stamp, `${JSON.stringify({ built: started.toISOString(), inputs }, null, 2)}\n`);
fs.utimesSync(stamp, started, started);
