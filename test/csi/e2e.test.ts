/**
 * Kubelet-style end to end: abaca-server (solo mode) on a bridge address, the controller plugin,
 * and two "nodes" — network namespaces with their own addresses on that bridge, each running a
 * node plugin (`abaca-csi --mode node` under nsenter --net), so the share server sees each node's
 * mounts come from that node's address and only the access rule ControllerPublishVolume granted
 * lets them in. The test plays the kubelet and the sidecars: it calls the plugins' sockets in the
 * order Kubernetes does and plays two pods by writing into the published paths.
 * Then the same with a node plugin restarted between stage and publish, and with the FUSE process
 * of a staged volume killed (the stale mount is reported, and recovered by staging again).
 * Needs root, /dev/fuse, ip netns and nsenter (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ServerProcess } from '../helpers/process.ts';
import { requestPasswordToken } from '../helpers/process.ts';
import {
  adminSecrets,
  type CsiClient,
  codeOf,
  connect,
  eventually,
  GiB,
  MOUNT_RWX,
  type Msg,
  mountPointsUnder,
  mountsAt,
  netnsSkip,
  PASSWORD,
  type Plugin,
  startAbacaServer,
  startPlugin,
  stopPlugins,
  tempDir,
  unmountUnder,
} from './helpers.ts';

const skip = netnsSkip();
const tag = `abc${process.pid % 100000}`;
const bridge = `${tag}br`;
const oct = 1 + (process.pid % 250);
const hostAddr = `10.215.${oct}.1`;
const nodes = [
  { name: 'node-a', ns: `${tag}a`, veth: `${tag}a0`, peer: `${tag}a1`, ip: `10.215.${oct}.2` },
  { name: 'node-b', ns: `${tag}b`, veth: `${tag}b0`, peer: `${tag}b1`, ip: `10.215.${oct}.3` },
];
const work = skip ? '' : tempDir('abaca-csi-e2e-');
let server: ServerProcess;
let secrets: Record<string, string>;
let controller: CsiClient;
const nodePlugins: Plugin[] = [];
const nodeClients: CsiClient[] = [];
let token = '';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

async function startNode(i: number): Promise<void> {
  const n = nodes[i]!;
  nodeClients[i]?.close();
  nodePlugins[i] = await startPlugin(
    path.join(work, `${n.name}.sock`),
    ['--mode', 'node', '--node-id', n.name, '--node-ip', n.ip, '--zone', 'nova'],
    ['nsenter', `--net=/run/netns/${n.ns}`],
  );
  nodeClients[i] = connect(nodePlugins[i]!.socket);
}

// biome-ignore lint/suspicious/noExplicitAny: API bodies, checked by the assertions
async function api(url: string): Promise<any> {
  const res = await fetch(`${server.url}/v2${url}`, {
    headers: { 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': '2.65' },
  });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

before(async () => {
  if (skip) return;
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', `${hostAddr}/24`, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  for (const n of nodes) {
    ip('netns', 'add', n.ns);
    ip('link', 'add', n.veth, 'type', 'veth', 'peer', 'name', n.peer);
    ip('link', 'set', n.veth, 'master', bridge);
    ip('link', 'set', n.veth, 'up');
    ip('link', 'set', n.peer, 'netns', n.ns);
    ip('-n', n.ns, 'addr', 'add', `${n.ip}/24`, 'dev', n.peer);
    ip('-n', n.ns, 'link', 'set', 'lo', 'up');
    ip('-n', n.ns, 'link', 'set', n.peer, 'up');
  }
  server = await startAbacaServer(path.join(work, 'server'), `${hostAddr}:0`);
  secrets = adminSecrets(server);
  token = (await requestPasswordToken(server.url, PASSWORD)).headers.get('x-subject-token')!;
  const ctl = await startPlugin(path.join(work, 'controller.sock'), ['--mode', 'controller']);
  controller = connect(ctl.socket);
  await startNode(0);
  await startNode(1);
});

after(async () => {
  if (skip) return;
  controller?.close();
  for (const c of nodeClients) c?.close();
  unmountUnder(work);
  await stopPlugins();
  // The FUSE processes the node plugins started live in the namespaces: end them with them.
  for (const n of nodes) {
    for (const pid of (spawnSync('ip', ['netns', 'pids', n.ns], { encoding: 'utf8' }).stdout ?? '')
      .split('\n')
      .filter(Boolean))
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    spawnSync('ip', ['netns', 'del', n.ns]);
    spawnSync('ip', ['link', 'del', n.veth]);
  }
  spawnSync('ip', ['link', 'del', bridge]);
  await server?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

const nodeId = (i: number) => `${nodes[i]!.name}@${nodes[i]!.ip}`;
const stagingOf = (vol: string, i: number) => path.join(work, nodes[i]!.name, 'staging', vol);
const targetOf = (vol: string, i: number, pod: string) => path.join(work, nodes[i]!.name, 'pods', pod, vol);

/** ControllerPublish, then NodeStage and NodePublish on node i, as the attacher and kubelet do. */
async function attach(vol: string, i: number, pod: string): Promise<string> {
  const { publish_context } = await controller.controller.ControllerPublishVolume({
    volume_id: vol,
    node_id: nodeId(i),
    volume_capability: MOUNT_RWX,
    secrets,
  });
  const staging = stagingOf(vol, i);
  const target = targetOf(vol, i, pod);
  fs.mkdirSync(staging, { recursive: true });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const n = nodeClients[i]!.node;
  await n.NodeStageVolume({
    volume_id: vol,
    staging_target_path: staging,
    volume_capability: MOUNT_RWX,
    secrets,
    publish_context,
  });
  await n.NodePublishVolume({
    volume_id: vol,
    staging_target_path: staging,
    target_path: target,
    volume_capability: MOUNT_RWX,
    publish_context,
  });
  return target;
}

async function detach(vol: string, i: number, pod: string): Promise<void> {
  const n = nodeClients[i]!.node;
  await n.NodeUnpublishVolume({ volume_id: vol, target_path: targetOf(vol, i, pod) });
  await n.NodeUnstageVolume({ volume_id: vol, staging_target_path: stagingOf(vol, i) });
  await controller.controller.ControllerUnpublishVolume({ volume_id: vol, node_id: nodeId(i), secrets });
  assert.equal(mountsAt(targetOf(vol, i, pod)), 0);
  assert.equal(mountsAt(stagingOf(vol, i)), 0);
}

async function deleteVolume(vol: string): Promise<void> {
  for (
    let i = 0;
    i < 150 && (await codeOf(controller.controller.DeleteVolume({ volume_id: vol, secrets }))) !== 'OK';
    i++
  )
    await new Promise((r) => setTimeout(r, 200));
  await eventually(`share ${vol} gone`, 60_000, async () => (await api(`/shares/${vol}`)) === null);
}

test('RWX across two nodes: publish, stage, two pods share files, expand, snapshot, restore, tear down', {
  skip,
  timeout: 300_000,
}, async () => {
  const vol = (
    await controller.controller.CreateVolume({
      name: 'pvc-e2e-shared',
      volume_capabilities: [MOUNT_RWX],
      capacity_range: { required_bytes: String(GiB) },
      secrets,
    })
  ).volume.volume_id;

  // Before ControllerPublishVolume the node has no rule: staging is refused with the reason.
  const early = await nodeClients[0]!.node
    .NodeStageVolume({
      volume_id: vol,
      staging_target_path: stagingOf(vol, 0),
      volume_capability: MOUNT_RWX,
      secrets,
    })
    .catch((e: Msg) => e);
  assert.equal(early.code, 7, early.details); // PERMISSION_DENIED
  assert.match(early.details, new RegExp(`no access rule .* allows ${nodes[0]!.ip.replace(/\./g, '\\.')}`));

  const podA = await attach(vol, 0, 'pod-a');
  const podB = await attach(vol, 1, 'pod-b');
  const rules = (await api(`/share-access-rules?share_id=${vol}`)).access_list;
  assert.deepEqual(rules.map((r: Msg) => `${r.access_to} ${r.access_level} ${r.state}`).sort(), [
    `${nodes[0]!.ip} rw active`,
    `${nodes[1]!.ip} rw active`,
  ]);
  fs.writeFileSync(path.join(podA, 'from-a.txt'), 'written on node A');
  fs.writeFileSync(path.join(podB, 'from-b.txt'), 'written on node B');
  assert.equal(fs.readFileSync(path.join(podB, 'from-a.txt'), 'utf8'), 'written on node A');
  assert.equal(fs.readFileSync(path.join(podA, 'from-b.txt'), 'utf8'), 'written on node B');

  // Online expansion: no node step; the mounted file systems report the new size.
  const grown = await controller.controller.ControllerExpandVolume({
    volume_id: vol,
    capacity_range: { required_bytes: String(2 * GiB) },
    secrets,
  });
  assert.equal(grown.capacity_bytes, String(2 * GiB));
  assert.equal(grown.node_expansion_required, false);
  for (const [i, p] of [
    [0, podA],
    [1, podB],
  ] as const)
    await eventually('the new size on the node', 30_000, async () => {
      const s = await nodeClients[i]!.node.NodeGetVolumeStats({ volume_id: vol, volume_path: p });
      return s.usage.find((u: Msg) => u.unit === 'BYTES').total === String(2 * GiB);
    });

  const snap = (
    await controller.controller.CreateSnapshot({ name: 'snap-e2e', source_volume_id: vol, secrets })
  ).snapshot;
  assert.equal(snap.ready_to_use, true);
  fs.writeFileSync(path.join(podA, 'after-snapshot.txt'), 'not in the snapshot');

  const restored = (
    await controller.controller.CreateVolume({
      name: 'pvc-e2e-restored',
      volume_capabilities: [MOUNT_RWX],
      capacity_range: { required_bytes: String(2 * GiB) },
      volume_content_source: { snapshot: { snapshot_id: snap.snapshot_id } },
      secrets,
    })
  ).volume.volume_id;
  const podC = await attach(restored, 0, 'pod-c');
  assert.equal(fs.readFileSync(path.join(podC, 'from-a.txt'), 'utf8'), 'written on node A');
  assert.equal(fs.readFileSync(path.join(podC, 'from-b.txt'), 'utf8'), 'written on node B');
  assert.equal(fs.existsSync(path.join(podC, 'after-snapshot.txt')), false);

  await detach(restored, 0, 'pod-c');
  await detach(vol, 0, 'pod-a');
  await detach(vol, 1, 'pod-b');
  assert.deepEqual((await api(`/share-access-rules?share_id=${vol}`)).access_list, []);
  await controller.controller.DeleteSnapshot({ snapshot_id: snap.snapshot_id, secrets });
  await deleteVolume(restored);
  await deleteVolume(vol);
  assert.deepEqual(mountPointsUnder(work), []);
  assert.deepEqual((await api('/shares/detail')).shares, []);
});

test('a node plugin restarted between stage and publish finds its mounts again', {
  skip,
  timeout: 180_000,
}, async () => {
  const vol = (
    await controller.controller.CreateVolume({
      name: 'pvc-e2e-restart',
      volume_capabilities: [MOUNT_RWX],
      secrets,
    })
  ).volume.volume_id;
  const { publish_context } = await controller.controller.ControllerPublishVolume({
    volume_id: vol,
    node_id: nodeId(0),
    volume_capability: MOUNT_RWX,
    secrets,
  });
  const staging = stagingOf(vol, 0);
  fs.mkdirSync(staging, { recursive: true });
  await nodeClients[0]!.node.NodeStageVolume({
    volume_id: vol,
    staging_target_path: staging,
    volume_capability: MOUNT_RWX,
    secrets,
    publish_context,
  });
  await nodePlugins[0]!.stop('SIGKILL');
  await startNode(0);
  const n = () => nodeClients[0]!.node;
  // Staging again after the restart is a no-op: the mount is found in mountinfo.
  await n().NodeStageVolume({
    volume_id: vol,
    staging_target_path: staging,
    volume_capability: MOUNT_RWX,
    secrets,
    publish_context,
  });
  assert.equal(mountsAt(staging), 1);
  const target = targetOf(vol, 0, 'pod-r');
  fs.mkdirSync(path.dirname(target), { recursive: true });
  await n().NodePublishVolume({
    volume_id: vol,
    staging_target_path: staging,
    target_path: target,
    volume_capability: MOUNT_RWX,
    publish_context,
  });
  fs.writeFileSync(path.join(target, 'survived'), 'yes');
  await nodePlugins[0]!.stop('SIGKILL');
  await startNode(0);
  await detach(vol, 0, 'pod-r');
  await deleteVolume(vol);
});

test('a killed FUSE process: stats say abnormal, the next publish mounts it again and re-binds the pod path', {
  skip,
  timeout: 180_000,
}, async () => {
  const vol = (
    await controller.controller.CreateVolume({
      name: 'pvc-e2e-stale',
      volume_capabilities: [MOUNT_RWX],
      secrets,
    })
  ).volume.volume_id;
  const target = await attach(vol, 1, 'pod-s');
  fs.writeFileSync(path.join(target, 'before'), 'written before the crash');
  const staging = stagingOf(vol, 1);
  const pids = spawnSync('pgrep', ['-f', staging], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
  assert.ok(pids.length >= 1, 'the FUSE process serving the staging path');
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  const n = nodeClients[1]!.node;
  const stats = await eventually('the mount reported broken', 30_000, async () => {
    const s = await n.NodeGetVolumeStats({ volume_id: vol, volume_path: target });
    return s.volume_condition.abnormal ? s : null;
  });
  assert.match(stats.volume_condition.message, /ENOTCONN/);
  assert.deepEqual(stats.usage, []);

  const { publish_context } = await controller.controller.ControllerPublishVolume({
    volume_id: vol,
    node_id: nodeId(1),
    volume_capability: MOUNT_RWX,
    secrets,
  });
  // The next NodePublishVolume (with the node-publish secret) mounts the stale staging path again
  // and re-makes the pod's bind mount; staging again afterwards finds it healthy.
  await n.NodePublishVolume({
    volume_id: vol,
    staging_target_path: staging,
    target_path: target,
    volume_capability: MOUNT_RWX,
    publish_context,
    secrets,
  });
  await n.NodeStageVolume({
    volume_id: vol,
    staging_target_path: staging,
    volume_capability: MOUNT_RWX,
    secrets,
    publish_context,
  });
  assert.equal(mountsAt(staging), 1);
  assert.equal(mountsAt(target), 1);
  assert.equal(fs.readFileSync(path.join(target, 'before'), 'utf8'), 'written before the crash');
  const healthy = await n.NodeGetVolumeStats({ volume_id: vol, volume_path: target });
  assert.equal(healthy.volume_condition.abnormal, false);
  await detach(vol, 1, 'pod-s');
  await deleteVolume(vol);
  assert.deepEqual(mountPointsUnder(work), []);
});
