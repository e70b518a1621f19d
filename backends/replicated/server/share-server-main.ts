/**
 * Entry point of `abaca-share-server --bricks H:P,H:P,... [--host 127.0.0.1] [--port 0]
 *   [--attach share1,share2] [--brick-timeout-ms 5000] [--heal-interval-ms 60000] [--no-auto-heal]
 *   [--auth-url http://HOST:PORT/identity/v3] [--token-recheck-ms 5000] [--lock-grace-ms 10000]
 *   [--cluster] [--no-direct-reads]`.
 * `--lock-grace-ms`: after taking a share over, how long mounts may reclaim the locks they held
 * (new lock requests wait that long); 0 turns reclaim off.
 * `--cluster`: one of several share servers under the cluster monitor (server/assignments.ts).
 * `--no-direct-reads`: mounts read file data through this server only, never from the bricks
 * (protocol/read-grants.ts); with cluster TLS they always do.
 * Environment: ABACA_ADMIN_TOKEN (required), the secret of the admin operations; ABACA_CLUSTER_CA,
 * ABACA_CLUSTER_CERT, ABACA_CLUSTER_KEY (protocol/tls.ts): with them the client port serves TLS
 * only and the links to bricks are mutual TLS.
 */
import { parseArgs } from '../protocol/cli-args.ts';
import { type ClusterTls, clusterTlsFromEnv } from '../protocol/tls.ts';
import { ShareServer } from './share-server.ts';

const args = parseArgs(process.argv.slice(2));
const list = (k: string): string[] => (args.get(k) ?? '').split(',').filter((s) => s !== '');
const numArg = (k: string): number | undefined => (args.has(k) ? Number(args.get(k)) : undefined);
const timeoutMs = numArg('brick-timeout-ms');
const adminToken = process.env['ABACA_ADMIN_TOKEN'] ?? '';
if (adminToken.length < 16) {
  console.error('abaca-share-server: set ABACA_ADMIN_TOKEN to a secret of at least 16 characters');
  process.exit(2);
}
const lockGraceMs = numArg('lock-grace-ms');
if (lockGraceMs !== undefined && !(Number.isFinite(lockGraceMs) && lockGraceMs >= 0)) {
  console.error(
    `abaca-share-server: --lock-grace-ms must be a number of milliseconds >= 0, not ${args.get('lock-grace-ms')}`,
  );
  process.exit(2);
}
let tls: ClusterTls | undefined;
try {
  tls = clusterTlsFromEnv();
} catch (err) {
  console.error(`abaca-share-server: ${(err as Error).message}`);
  process.exit(2);
}
const server = new ShareServer({
  host: args.get('host') ?? '127.0.0.1',
  port: Number(args.get('port') ?? 0),
  bricks: list('bricks'),
  link: timeoutMs === undefined ? {} : { timeoutMs },
  healIntervalMs: numArg('heal-interval-ms'),
  autoHeal: !args.has('no-auto-heal'),
  handshakeMs: numArg('handshake-ms'),
  adminToken,
  authUrl: args.get('auth-url'),
  tokenRecheckMs: numArg('token-recheck-ms'),
  lockGraceMs,
  tls,
  managed: args.has('cluster'),
  directReads: !args.has('no-direct-reads'),
});
const addr = await server.listen();
for (const s of list('attach')) {
  try {
    await server.attach(s);
  } catch (err) {
    console.error(`abaca-share-server: cannot attach ${s}: ${(err as Error).message}`);
  }
}
console.log(`abaca-share-server listening on ${addr}${tls ? ' (TLS)' : ''}`);
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
