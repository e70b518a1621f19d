// Prototype entry: node --import tsx client/fuse/serve.ts DIR [--sink] [--readers N] [--latency MS]
// Mounts an in-memory tree (or a write sink) at DIR until SIGINT/SIGTERM or an outside unmount.
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

const memory = new MemoryFs({ sink: values.sink, latencyMs: Number(values.latency) });
const session = await FuseSession.mount(dir, memory, {
  readers,
  maxWrite: Number(values['max-write']),
  debug: values.debug,
});
process.stdout.write(`mounted ${dir}\n`);
const stop = () => void session.unmount(true);
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
await session.closedPromise();
process.stdout.write(`negotiated ${JSON.stringify(session.negotiated)}\n`);
process.stdout.write(`most delayed at once ${memory.mostDelayed}\nunmounted ${dir}\n`);
