// How every bin finds its code: `await run('cli/main.ts')` runs that module.
//
// An installed package has no TypeScript sources: it runs the JavaScript `npm run build` compiled
// into dist/ (dist/cli/main.js). A checkout runs dist/ too while the build is at least as new as
// every file it was built from, and otherwise the sources through tsx (a development dependency),
// so that an edit, a pull or a branch switch is never shadowed by an older build.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
/** Written by scripts/build.mjs when a build completes; its mtime is the time the build started. */
export const STAMP = path.join(DIST, '.build.json');

/** Newest mtime (ms) of a file or directory under p (a directory's changes when a file is added or removed). */
function newest(p) {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  let t = st.mtimeMs;
  if (st.isDirectory())
    for (const name of fs.readdirSync(p)) {
      const m = newest(path.join(p, name));
      if (m > t) t = m;
    }
  return t;
}

/** Whether dist/ holds a complete build of the sources as they are now. */
export function buildIsCurrent() {
  const st = fs.statSync(STAMP, { throwIfNoEntry: false });
  if (!st) return false;
  let inputs;
  try {
    inputs = JSON.parse(fs.readFileSync(STAMP, 'utf8')).inputs;
  } catch {
    return false;
  }
  return inputs.every((input) => newest(path.join(ROOT, input)) <= st.mtimeMs);
}

/** Imports the bin's entry module: compiled when that is current, else the source through tsx. */
export async function run(source) {
  const sourceFile = path.join(ROOT, source);
  const compiled = path.join(DIST, source.replace(/\.ts$/, '.js'));
  if (!fs.existsSync(sourceFile) || buildIsCurrent()) return import(pathToFileURL(compiled).href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(pathToFileURL(sourceFile).href);
}
