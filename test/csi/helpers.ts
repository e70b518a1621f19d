/**
 * Test helpers for the CSI plugin: a real abaca-server (solo mode: API, identity, three bricks and
 * a share server), `abaca-csi` processes on unix sockets in a temp dir, and promise-returning gRPC
 * clients of the three services.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { type Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { readMounts } from '../../client/mount/mountinfo.ts';
import { csiServices } from '../../csi/proto.ts';
import { REPO_ROOT, type ServerProcess, startServerProcess } from '../helpers/process.ts';

export const CSI_BIN = path.join(REPO_ROOT, 'bin/abaca-csi.js');
export const PASSWORD = 'csi-test-admin-password';
export const GiB = 1024 ** 3;

export { fuseSkip, netnsSkip, tempDir } from '../fuse/helpers.ts';

/** Manila CSI's secret keys for the server's admin (password credentials). */
export function adminSecrets(server: ServerProcess): Record<string, string> {
  return {
    'os-authURL': `${server.url}/identity/v3`,
    'os-region': 'RegionOne',
    'os-userName': 'admin',
    'os-password': PASSWORD,
    'os-projectName': 'admin',
    'os-domainName': 'Default',
  };
}

export async function startAbacaServer(dataDir: string, listen = '127.0.0.1:0'): Promise<ServerProcess> {
  return startServerProcess(
    {
      ABACA_DATA_DIR: dataDir,
      ABACA_ADMIN_PASSWORD: PASSWORD,
      ABACA_LISTEN: listen,
      ABACA_LOG_LEVEL: 'warn',
    },
    120_000,
  );
}

export interface Plugin {
  child: ChildProcess;
  socket: string;
  /** Everything it logged (stderr) so far. */
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const plugins: Plugin[] = [];

/** Starts `abaca-csi ARGS --endpoint unix://SOCKET`, through `prefix` (e.g. nsenter) when given. */
export async function startPlugin(socket: string, args: string[], prefix: string[] = []): Promise<Plugin> {
  const cmd = [...prefix, process.execPath, CSI_BIN, '--endpoint', `unix://${socket}`, ...args];
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`abaca-csi did not start in 60 s:\n${out}\n${err}`)),
      60_000,
    );
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('abaca-csi listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`abaca-csi exited with ${code}:\n${out}\n${err}`));
    });
  });
  const p: Plugin = {
    child,
    socket,
    logs: () => err,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  plugins.push(p);
  return p;
}

export async function stopPlugins(): Promise<void> {
  // CSI_TEST_LOGS=1 shows what the plugins logged (each call with its duration) when debugging.
  if (process.env.CSI_TEST_LOGS) for (const p of plugins) process.stderr.write(p.logs());
  await Promise.all(plugins.splice(0).map((p) => p.stop()));
}

// biome-ignore lint/suspicious/noExplicitAny: CSI messages are checked field by field in the tests
export type Msg = any;
export type Call = (req?: Msg) => Promise<Msg>;

type IdentityRpc = 'GetPluginInfo' | 'GetPluginCapabilities' | 'Probe';
type ControllerRpc =
  | 'CreateVolume'
  | 'DeleteVolume'
  | 'ControllerPublishVolume'
  | 'ControllerUnpublishVolume'
  | 'ValidateVolumeCapabilities'
  | 'ListVolumes'
  | 'GetCapacity'
  | 'ControllerGetCapabilities'
  | 'CreateSnapshot'
  | 'DeleteSnapshot'
  | 'ListSnapshots'
  | 'ControllerExpandVolume';
type NodeRpc =
  | 'NodeStageVolume'
  | 'NodeUnstageVolume'
  | 'NodePublishVolume'
  | 'NodeUnpublishVolume'
  | 'NodeGetVolumeStats'
  | 'NodeGetCapabilities'
  | 'NodeGetInfo';

export interface CsiClient {
  identity: Record<IdentityRpc, Call>;
  controller: Record<ControllerRpc, Call>;
  node: Record<NodeRpc, Call>;
  close(): void;
}

function promisify<K extends string>(client: Client): Record<K, Call> {
  return new Proxy({} as Record<K, Call>, {
    get:
      (_t, method: string) =>
      (req: Msg = {}) =>
        new Promise((resolve, reject) => {
          const fn = (
            client as unknown as Record<
              string,
              (r: Msg, o: object, cb: (err: ServiceError | null, res: Msg) => void) => void
            >
          )[method];
          if (!fn) return reject(new Error(`no such method ${method}`));
          fn.call(client, req, { deadline: Date.now() + 120_000 }, (err: ServiceError | null, res: Msg) =>
            err ? reject(err) : resolve(res),
          );
        }),
  });
}

export function connect(socket: string): CsiClient {
  const defs = csiServices();
  const target = `unix://${socket}`;
  const id = new defs.Identity(target, credentials.createInsecure());
  const ctl = new defs.Controller(target, credentials.createInsecure());
  const node = new defs.Node(target, credentials.createInsecure());
  return {
    identity: promisify<IdentityRpc>(id),
    controller: promisify<ControllerRpc>(ctl),
    node: promisify<NodeRpc>(node),
    close() {
      id.close();
      ctl.close();
      node.close();
    },
  };
}

/** The gRPC status name of a failed call (e.g. 'INVALID_ARGUMENT'), or 'OK'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    const code = (err as ServiceError).code;
    if (code === undefined) throw err;
    return (
      Object.entries((await import('@grpc/grpc-js')).status).find(([, v]) => v === code)?.[0] ?? String(code)
    );
  }
}

export const MOUNT_RWX = {
  mount: { fs_type: '', mount_flags: [] },
  access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' },
};
export const MOUNT_RO = {
  mount: { fs_type: '', mount_flags: [] },
  access_mode: { mode: 'MULTI_NODE_READER_ONLY' },
};
export const MOUNT_SNW = {
  mount: { fs_type: '', mount_flags: [] },
  access_mode: { mode: 'SINGLE_NODE_WRITER' },
};

/** The mounts on `dir` in this mount namespace. */
export function mountsAt(dir: string): number {
  return readMounts().filter((m) => m.mountPoint === dir).length;
}

/** The mount points at `root` and under it, deepest first. */
export function mountPointsUnder(root: string): string[] {
  return readMounts()
    .map((m) => m.mountPoint)
    .filter((p) => p === root || p.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
}

/** Lazily unmounts every mount under `root` (teardown). */
export function unmountUnder(root: string): void {
  const points = mountPointsUnder(root);
  for (const p of points) spawnSync('umount', ['-l', p]);
}

/** Polls `probe` until it is truthy (or throws after `ms`). */
export async function eventually<T>(what: string, ms: number, probe: () => Promise<T> | T): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
