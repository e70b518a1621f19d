// Prototype entry: node --import tsx client/fuse/serve.ts DIR [--sink] [--readers N] [--latency MS]
// Mounts an in-memory tree (or a write sink) at DIR until SIGINT/SIGTERM or an outside unmount.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MemoryFs } from './memory-fs.ts';
import { FuseSession } from './session.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sink: { type: 'boolean', default: false },
    readers: { type: 'string', default: '8' },
    latency: { type: 'string', default: '0' },
    'max-write': { type: 'string', default: String(1024 * 1024) },
    debug: { type: 'boolean', default: false },
  },
});
const dir = positionals[0];
if (!dir) {
  process.stderr.write('usage: serve.ts DIR [--sink] [--readers N] [--latency MS] [--max-write BYTES]\n');
  process.exit(2);
}
const readers = Number(values.readers);
if (!process.env.UV_THREADPOOL_SIZE) {
  // Each reader blocks one libuv thread in read(2); the pool size is fixed at its first use.
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: String(readers + 4) },
  });
  process.exit(r.status ?? 1);
}

const session = await FuseSession.mount(
  dir,
  new MemoryFs({ sink: values.sink, latencyMs: Number(values.latency) }),
  { readers, maxWrite: Number(values['max-write']), debug: values.debug },
);
process.stdout.write(`mounted ${dir}\n`);
const stop = () => void session.unmount(true);
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
await session.closedPromise();
process.stdout.write(`negotiated ${JSON.stringify(session.negotiated)}\nunmounted ${dir}\n`);
