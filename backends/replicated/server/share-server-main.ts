/**
 * Entry point of `abaca-share-server --bricks H:P,H:P,... [--host 127.0.0.1] [--port 0]
 *   [--attach share1,share2] [--brick-timeout-ms 5000] [--heal-interval-ms 60000] [--no-auto-heal]`.
 * Environment: ABACA_ADMIN_TOKEN, when set, is required by the admin operations.
 */
import { parseArgs } from '../protocol/cli-args.ts';
import { ShareServer } from './share-server.ts';

const args = parseArgs(process.argv.slice(2));
const list = (k: string): string[] => (args.get(k) ?? '').split(',').filter((s) => s !== '');
const numArg = (k: string): number | undefined => (args.has(k) ? Number(args.get(k)) : undefined);
const timeoutMs = numArg('brick-timeout-ms');
const server = new ShareServer({
  host: args.get('host') ?? '127.0.0.1',
  port: Number(args.get('port') ?? 0),
  bricks: list('bricks'),
  link: timeoutMs === undefined ? {} : { timeoutMs },
  healIntervalMs: numArg('heal-interval-ms'),
  autoHeal: !args.has('no-auto-heal'),
  handshakeMs: numArg('handshake-ms'),
  adminToken: process.env['ABACA_ADMIN_TOKEN'] || undefined,
});
const addr = await server.listen();
for (const s of list('attach')) {
  try {
    await server.attach(s);
  } catch (err) {
    console.error(`abaca-share-server: cannot attach ${s}: ${(err as Error).message}`);
  }
}
console.log(`abaca-share-server listening on ${addr}`);
const stop = (): void => {
  server.close();
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
