/** Entry point of `abaca-brick --dir DIR [--host 127.0.0.1] [--port 0] [--host-label H] [--zone Z]`. */
import { parseArgs } from '../protocol/cli-args.ts';
import { BrickServer } from './brick-server.ts';

const args = parseArgs(process.argv.slice(2));
const dir = args.get('dir');
if (!dir) {
  console.error('usage: abaca-brick --dir DIR [--host ADDR] [--port N] [--host-label NAME] [--zone NAME]');
  process.exit(2);
}
const brick = new BrickServer({
  dir,
  host: args.get('host') ?? '127.0.0.1',
  port: Number(args.get('port') ?? 0),
  hostLabel: args.get('host-label'),
  zone: args.get('zone'),
  handshakeMs: args.has('handshake-ms') ? Number(args.get('handshake-ms')) : undefined,
});
const addr = await brick.listen();
console.log(`abaca-brick listening on ${addr}`);
const stop = (): void => {
  brick.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args.has('exit-on-stdin-close')) {
  // Started by a supervisor (tests, bench, solo mode): do not outlive it.
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}
