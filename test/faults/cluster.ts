/**
 * The cluster the fault-injection run works on: three bricks, each its own process and — when
 * this runs as root with `ip netns` — in a network namespace of its own behind a veth pair (so
 * one can be cut off), share servers at fixed ports (so they restart where the clients look for
 * them), and FUSE mounts (`abaca mount --foreground`) when FUSE is there.
 *
 * Several share servers (the cluster monitor's) with namespaces each get a namespace too, with two
 * links to the host: a front one that clients and the monitor reach it by, and a back one its
 * connections to the bricks take (the host routes between the namespaces). Cutting the front link
 * is the partition that tests fencing: the monitor moves the server's shares away while the server
 * still runs and still reaches the bricks.
 *
 * Addresses, per run: 10.216.<oct>.<4i+1>/<4i+2> for brick i (host/brick), .<64+4i+…> for share
 * server i's front link and .<128+4i+…> for its back link.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReplicatedClient } from '../../backends/replicated/client/client.ts';
import { type Proc, spawnDaemon } from '../../backends/replicated/processes.ts';
import { fuseSkip, type Mount, mount } from '../fuse/helpers.ts';

/** Why bricks cannot live in network namespaces here (no partitions then), or false. */
export function netnsSkip(): string | false {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `ip netns unavailable: ${r.error?.message ?? r.stderr}`;
  return false;
}

export { fuseSkip };

interface BrickSlot {
  dir: string;
  proc: Proc;
  /** host:port the share server links to (kept across restarts). */
  host: string;
  port: number;
  /** The namespace and the host-side end of its veth pair (undefined: loopback brick). */
  ns?: string;
  veth?: string;
}

/** A share server's namespace and the host-side ends of its two links. */
interface ServerNet {
  ns: string;
  /** Host end of the link clients and the cluster monitor use. */
  front: string;
  /** The server's address on the front link (it listens there). */
  addr: string;
}

export class FaultCluster {
  readonly dir: string;
  readonly adminToken: string;
  readonly bricks: BrickSlot[] = [];
  /** Share servers (one, or three under the cluster monitor), each at a fixed port once started. */
  readonly servers: Proc[] = [];
  readonly serverPorts: number[] = [];
  readonly mounts: Mount[] = [];
  private readonly tag = `abf${process.pid % 100000}`;
  private readonly oct = 1 + (process.pid % 250);
  private readonly namespaces: string[] = [];
  private readonly veths: string[] = [];
  private readonly serverNets: ServerNet[] = [];
  /** net.ipv4.ip_forward before this run turned it on (restored by close), if it did. */
  private forwardWas: string | undefined;

  private constructor(
    readonly useNetns: boolean,
    /** Share servers run with --cluster (owners decided by the cluster monitor). */
    readonly managed: boolean,
  ) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-faults-'));
    this.adminToken = `faults-${process.pid}-${Date.now()}`;
    fs.writeFileSync(path.join(this.dir, 'admin-token'), this.adminToken, { mode: 0o600 });
  }

  static async start(opts: { bricks?: number; servers?: number; netns: boolean }): Promise<FaultCluster> {
    const servers = opts.servers ?? 1;
    const c = new FaultCluster(opts.netns, servers > 1);
    try {
      const n = opts.bricks ?? 3;
      const bricks = Array.from({ length: n }, (_, i) => c.startBrick(i));
      const started = await Promise.allSettled(bricks);
      for (const r of started) if (r.status === 'fulfilled') c.bricks.push(r.value);
      for (const r of started) if (r.status === 'rejected') throw r.reason;
      await Promise.all(Array.from({ length: servers }, (_, i) => c.startServer(i)));
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private ip(...args: string[]): void {
    execFileSync('ip', args, { stdio: 'pipe' });
  }

  /** A veth pair from the host into `ns`: host end `host` at .<hostOct>/30, ns end at .<hostOct+1>. */
  private vethInto(ns: string, host: string, peer: string, hostOct: number): void {
    spawnSync('ip', ['link', 'del', host]); // left over by a killed run with the same pid
    this.ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    this.veths.push(host);
    this.ip('link', 'set', peer, 'netns', ns);
    this.ip('addr', 'add', `10.216.${this.oct}.${hostOct}/30`, 'dev', host);
    this.ip('link', 'set', host, 'up');
    this.ip('-n', ns, 'addr', 'add', `10.216.${this.oct}.${hostOct + 1}/30`, 'dev', peer);
    this.ip('-n', ns, 'link', 'set', peer, 'up');
  }

  private newNamespace(ns: string): void {
    spawnSync('ip', ['netns', 'del', ns]); // left over by a killed run with the same pid
    this.ip('netns', 'add', ns);
    this.namespaces.push(ns);
    this.ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  /**
   * Share server i's namespace: front link (.64+4i) for clients and the monitor, back link
   * (.128+4i) with the route to the bricks; the bricks route back to the back links. The host
   * forwards between them (ip_forward, on for the run; nothing routes beyond 10.216.<oct>.0/24).
   */
  private serverNet(i: number): ServerNet {
    const known = this.serverNets[i];
    if (known) return known;
    if (this.forwardWas === undefined) {
      this.forwardWas = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
      fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
    }
    const ns = `${this.tag}s${i}`;
    this.newNamespace(ns);
    const front = `${this.tag}f${i}`;
    this.vethInto(ns, front, `${this.tag}g${i}`, 64 + 4 * i);
    this.vethInto(ns, `${this.tag}k${i}`, `${this.tag}l${i}`, 128 + 4 * i);
    this.ip('-n', ns, 'route', 'add', `10.216.${this.oct}.0/26`, 'via', `10.216.${this.oct}.${128 + 4 * i}`);
    const net = { ns, front, addr: `10.216.${this.oct}.${64 + 4 * i + 1}` };
    this.serverNets[i] = net;
    return net;
  }

  /** Brick i: a namespace with a veth pair 10.216.<oct>.<4i+1> (host) ↔ <4i+2> (brick). */
  private async startBrick(i: number): Promise<BrickSlot> {
    const dir = path.join(this.dir, `brick${i + 1}`);
    const label = ['--host-label', `host${i + 1}`, '--zone', `zone${i + 1}`];
    if (!this.useNetns) {
      const proc = await spawnDaemon('abaca-brick.js', ['--dir', dir, '--port', '0', ...label]);
      return { dir, proc, host: '127.0.0.1', port: proc.port };
    }
    const ns = `${this.tag}b${i}`;
    const veth = `${this.tag}h${i}`;
    const brickAddr = `10.216.${this.oct}.${4 * i + 2}`;
    this.newNamespace(ns);
    this.vethInto(ns, veth, `${this.tag}v${i}`, 4 * i + 1);
    if (this.managed)
      // Share servers in namespaces of their own reach the bricks from their back links.
      this.ip(
        '-n',
        ns,
        'route',
        'add',
        `10.216.${this.oct}.128/26`,
        'via',
        `10.216.${this.oct}.${4 * i + 1}`,
      );
    const proc = await spawnDaemon(
      'abaca-brick.js',
      ['--dir', dir, '--host', brickAddr, '--port', '0', ...label],
      ['ip', 'netns', 'exec', ns],
    );
    return { dir, proc, host: brickAddr, port: proc.port, ns, veth };
  }

  get brickAddrs(): string[] {
    return this.bricks.map((b) => `${b.host}:${b.port}`);
  }

  /** kill -9 (if still running) and start again on the same address and directory. */
  async restartBrick(i: number): Promise<void> {
    const b = this.bricks[i]!;
    await b.proc.kill9();
    const label = ['--host-label', `host${i + 1}`, '--zone', `zone${i + 1}`];
    b.proc = await spawnDaemon(
      'abaca-brick.js',
      ['--dir', b.dir, '--host', b.host, '--port', String(b.port), ...label],
      b.ns ? ['ip', 'netns', 'exec', b.ns] : undefined,
    );
  }

  /**
   * Cuts share server i off from its clients and the cluster monitor (its front link down) or
   * joins it again; it keeps running and keeps its links to the bricks.
   */
  partitionServer(i: number, cut: boolean): void {
    const net = this.serverNets[i];
    if (!net) throw new Error('share-server partitions need the share servers in network namespaces');
    this.ip('link', 'set', net.front, cut ? 'down' : 'up');
  }

  /** Whether share servers run in namespaces of their own (and can be partitioned). */
  get serversPartitionable(): boolean {
    return this.useNetns && this.managed;
  }

  /** Cuts brick i off (its veth pair down) or joins it again. */
  partition(i: number, cut: boolean): void {
    const veth = this.bricks[i]!.veth;
    if (!veth) throw new Error('partitions need the bricks in network namespaces');
    this.ip('link', 'set', veth, cut ? 'down' : 'up');
  }

  /** Starts (or restarts, on the same port) share server i. */
  async startServer(i: number): Promise<void> {
    const net = this.serversPartitionable ? this.serverNet(i) : undefined;
    this.servers[i] = await spawnDaemon(
      'abaca-share-server.js',
      [
        ...(net ? ['--host', net.addr] : []),
        '--bricks',
        this.brickAddrs.join(','),
        '--brick-timeout-ms',
        '3000',
        '--port',
        String(this.serverPorts[i] ?? 0),
        '--heal-interval-ms',
        '5000',
        ...(this.managed ? ['--cluster'] : []),
      ],
      net ? ['ip', 'netns', 'exec', net.ns] : undefined,
      { ABACA_ADMIN_TOKEN: this.adminToken },
    );
    this.serverPorts[i] = this.servers[i]!.port;
  }

  /** Where share server i is reached: its front address, or loopback. */
  serverHost(i: number): string {
    return this.serverNets[i]?.addr ?? '127.0.0.1';
  }

  get serverAddrs(): string[] {
    return this.serverPorts.map((p, i) => `${this.serverHost(i)}:${p}`);
  }

  /** A plain client of share server i (admin calls, or the fresh reader of the final check). */
  async client(share?: string, i = 0): Promise<ReplicatedClient> {
    return ReplicatedClient.connect({
      host: this.serverHost(i),
      port: this.serverPorts[i]!,
      share,
      timeoutMs: 30_000,
      adminToken: this.adminToken,
    });
  }

  /** `abaca mount` of an export location with the admin token; `retry` seconds of re-sending. */
  async mount(location: string, name: string, retry: number): Promise<Mount> {
    const m = await mount(location, path.join(this.dir, 'mnt', name), [
      '-o',
      `admin_token_file=${path.join(this.dir, 'admin-token')},retry_timeout=${retry}`,
    ]);
    this.mounts.push(m);
    return m;
  }

  shareDir(i: number, share: string): string {
    return path.join(this.bricks[i]!.dir, 'shares', share);
  }

  async close(keep = false): Promise<void> {
    await Promise.all(this.mounts.splice(0).map((m) => m.stop()));
    const procs = [...this.bricks.map((b) => b.proc), ...this.servers];
    await Promise.all(procs.map((p) => p.kill9().catch(() => {})));
    for (const ns of this.namespaces) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split('\n').filter(Boolean))
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      spawnSync('ip', ['netns', 'del', ns]);
    }
    for (const v of this.veths) spawnSync('ip', ['link', 'del', v]);
    if (this.forwardWas !== undefined) fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', this.forwardWas);
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
