/**
 * Entry point of `abaca-brick --dir DIR [--host 127.0.0.1] [--port 0] [--host-label H] [--zone Z]
 *   [--capacity-gib N]`.
 * Environment: ABACA_CLUSTER_CA, ABACA_CLUSTER_CERT, ABACA_CLUSTER_KEY (protocol/tls.ts): with
 * them the brick serves mutual TLS only.
 */
import { parseArgs } from '../protocol/cli-args.ts';
import { type ClusterTls, clusterTlsFromEnv } from '../protocol/tls.ts';
import { BrickServer } from './brick-server.ts';

const args = parseArgs(process.argv.slice(2));
const dir = args.get('dir');
if (!dir) {
  console.error(
    'usage: abaca-brick --dir DIR [--host ADDR] [--port N] [--host-label NAME] [--zone NAME] [--capacity-gib N]',
  );
  process.exit(2);
}
const capacityGiB = args.has('capacity-gib') ? Number(args.get('capacity-gib')) : undefined;
if (capacityGiB !== undefined && !(Number.isFinite(capacityGiB) && capacityGiB > 0)) {
  console.error(
    `abaca-brick: --capacity-gib must be a positive number of GiB, not ${args.get('capacity-gib')}`,
  );
  process.exit(2);
}
let tls: ClusterTls | undefined;
try {
  tls = clusterTlsFromEnv();
} catch (err) {
  console.error(`abaca-brick: ${(err as Error).message}`);
  process.exit(2);
}
const brick = new BrickServer({
  dir,
  host: args.get('host') ?? '127.0.0.1',
  port: Number(args.get('port') ?? 0),
  hostLabel: args.get('host-label'),
  zone: args.get('zone'),
  capacityBytes: capacityGiB === undefined ? undefined : Math.floor(capacityGiB * 1024 ** 3),
  handshakeMs: args.has('handshake-ms') ? Number(args.get('handshake-ms')) : undefined,
  tls,
});
const addr = await brick.listen();
console.log(`abaca-brick listening on ${addr}${tls ? ' (TLS, client certificates of the cluster CA)' : ''}`);
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
