/**
 * `abaca-csi`: the CSI plugin. `--mode controller` serves Identity + Controller (next to the
 * csi-provisioner, -attacher, -resizer and -snapshotter sidecars), `--mode node` Identity + Node
 * (next to node-driver-registrar, privileged), `--mode all` both. Logs are JSON lines on stderr.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ipaddr from 'ipaddr.js';
import pino from 'pino';
import { restShareApiFactory } from './client.ts';
import { createController } from './controller.ts';
import { checkDriverName, createIdentity } from './identity.ts';
import { SystemMounter } from './mounter.ts';
import { createNode } from './node.ts';
import { csiLogger, serve } from './server.ts';
import type { Dict } from './types.ts';

const USAGE = `Usage: abaca-csi --mode controller|node|all --endpoint unix:///csi/csi.sock [options]

  --driver-name NAME     CSI driver name (default csi.abaca.io)
  --node-id NAME         this node's name (node and all modes; default: the host name)
  --node-ip IP           the address this node's mounts come from; the controller grants it the
                         share's access rule (node and all modes; required)
  --zone ZONE            this node's availability zone, reported as topology.abaca.io/zone
  --secrets-dir DIR      the controller's own credentials: a mounted Secret, one file per key
                         (os-authURL, …); enables ListVolumes and GetCapacity, which carry no secrets
  --cluster-id ID        recorded on every share the controller makes (abaca.io/csi-cluster)
  --op-timeout SECONDS   how long a controller call waits for the share API before answering
                         ABORTED so that the sidecar retries (default 8)
  --log-level LEVEL      trace|debug|info|warn|error (default info)`;

/** A Kubernetes Secret mounted as a directory: one file per key (dotfiles are the mount's own). */
export function readSecretsDir(dir: string): Dict {
  const out: Dict = {};
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const file = path.join(dir, name);
    if (fs.statSync(file).isFile()) out[name] = fs.readFileSync(file, 'utf8').trim();
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: 'string' },
      endpoint: { type: 'string' },
      'driver-name': { type: 'string', default: 'csi.abaca.io' },
      'node-id': { type: 'string' },
      'node-ip': { type: 'string' },
      zone: { type: 'string' },
      'secrets-dir': { type: 'string' },
      'cluster-id': { type: 'string' },
      'op-timeout': { type: 'string', default: '8' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const fail = (msg: string): never => {
    process.stderr.write(`abaca-csi: ${msg}\n\n${USAGE}\n`);
    process.exit(2);
  };
  const mode = values.mode ?? fail('--mode is required');
  if (!['controller', 'node', 'all'].includes(mode))
    fail(`--mode must be controller, node or all, not ${mode}`);
  const endpoint = values.endpoint ?? fail('--endpoint is required');
  const driverName = values['driver-name']!;
  const bad = checkDriverName(driverName);
  if (bad) fail(`--driver-name ${driverName}: ${bad}`);
  const opTimeout = Number(values['op-timeout']);
  if (!(opTimeout > 0 && opTimeout <= 600)) fail('--op-timeout must be a number of seconds, 0 < n <= 600');
  const log = csiLogger(values['log-level']!, mode, pino.destination(2));
  const api = restShareApiFactory();
  const controller = mode !== 'node';
  const node = mode !== 'controller';

  let services: Parameters<typeof serve>[1] = {
    identity: createIdentity({ driverName, controller, ready: async () => true }),
  };
  if (controller) {
    const dir = values['secrets-dir'];
    services.controller = createController({
      driverName,
      api,
      opTimeoutMs: opTimeout * 1000,
      defaultSecrets: dir ? readSecretsDir(dir) : null,
      clusterId: values['cluster-id'] ?? null,
    });
  }
  if (node) {
    const ip = values['node-ip'] ?? fail('--node-ip is required in node mode');
    if (!ipaddr.isValid(ip)) fail(`--node-ip ${ip} is not an IP address`);
    const nodeId = values['node-id'] ?? (await import('node:os')).hostname();
    if (nodeId.includes('@')) fail('--node-id must not contain @');
    services = {
      ...services,
      identity: createIdentity({
        driverName,
        controller,
        // FUSE is what the node needs; without it no volume can be staged.
        ready: async () => fs.existsSync('/dev/fuse'),
      }),
      node: createNode({ nodeId, nodeIp: ip, zone: values.zone ?? null, mounter: new SystemMounter(), api }),
    };
  }
  const running = await serve(endpoint, services, log);
  log.info({ endpoint, driverName }, 'abaca-csi serving');
  // Plain text for scripts and tests, whatever the log level.
  process.stdout.write(`abaca-csi listening on unix://${running.path}\n`);
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    running.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

await main(process.argv.slice(2));
