/**
 * CSI conformance, after csi-sanity's cases for what abaca-csi advertises, against a real
 * abaca-server in solo mode (replicated backend): one plugin in `--mode all` with the controller's
 * own credentials (--secrets-dir, for ListVolumes and GetCapacity). Identity; CreateVolume
 * idempotency, AlreadyExists, concurrency, content sources, topology, parameters and the error a
 * failed share gives; DeleteVolume; ValidateVolumeCapabilities; expansion; snapshots and their
 * listing filters and paging; ListVolumes paging; GetCapacity; publish/unpublish and the access
 * rule; credentials (missing, wrong) and that no secret ever reaches the log. With root and FUSE
 * also the node lifecycle, repeated for idempotency (otherwise that test says why it skips).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ServerProcess } from '../helpers/process.ts';
import { requestPasswordToken } from '../helpers/process.ts';
import {
  adminSecrets,
  type CsiClient,
  codeOf,
  connect,
  fuseSkip,
  GiB,
  MOUNT_RO,
  MOUNT_RWX,
  MOUNT_SNW,
  type Msg,
  mountsAt,
  PASSWORD,
  type Plugin,
  startAbacaServer,
  startPlugin,
  stopPlugins,
  tempDir,
  unmountUnder,
} from './helpers.ts';

const work = tempDir('abaca-csi-sanity-');
let server: ServerProcess;
let plugin: Plugin;
let csi: CsiClient;
let secrets: Record<string, string>;
let token = '';
const NODE_ID = 'sanity-node@127.0.0.1';

// biome-ignore lint/suspicious/noExplicitAny: API bodies, checked by the assertions
async function api(method: string, url: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server.url}/v2${url}`, {
    method,
    headers: {
      'X-Auth-Token': token,
      'Content-Type': 'application/json',
      'X-OpenStack-Manila-API-Version': '2.65',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

before(async () => {
  server = await startAbacaServer(path.join(work, 'server'));
  secrets = adminSecrets(server);
  const dir = path.join(work, 'controller-secret');
  fs.mkdirSync(dir);
  for (const [k, v] of Object.entries(secrets)) fs.writeFileSync(path.join(dir, k), `${v}\n`);
  plugin = await startPlugin(path.join(work, 'csi.sock'), [
    '--mode',
    'all',
    '--node-id',
    'sanity-node',
    '--node-ip',
    '127.0.0.1',
    '--zone',
    'nova',
    '--secrets-dir',
    dir,
    '--cluster-id',
    'sanity',
  ]);
  csi = connect(plugin.socket);
  const res = await requestPasswordToken(server.url, PASSWORD);
  token = res.headers.get('x-subject-token')!;
});

after(async () => {
  csi?.close();
  unmountUnder(work);
  await stopPlugins();
  await server?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

const create = (name: string, extra: Msg = {}) =>
  csi.controller.CreateVolume({ name, volume_capabilities: [MOUNT_RWX], secrets, ...extra });
const del = (volume_id: string) => csi.controller.DeleteVolume({ volume_id, secrets });

describe('Identity', () => {
  test('plugin info, capabilities and probe', async () => {
    const info = await csi.identity.GetPluginInfo();
    assert.equal(info.name, 'csi.abaca.io');
    assert.match(info.vendor_version, /^\d+\.\d+\.\d+/);
    const caps = (await csi.identity.GetPluginCapabilities()).capabilities;
    const types = caps.map((c: Msg) => c.service?.type ?? `expansion:${c.volume_expansion?.type}`);
    assert.deepEqual(types.sort(), [
      'CONTROLLER_SERVICE',
      'VOLUME_ACCESSIBILITY_CONSTRAINTS',
      'expansion:ONLINE',
    ]);
    assert.deepEqual(await csi.identity.Probe(), { ready: { value: fs.existsSync('/dev/fuse') } });
  });

  test('controller and node capabilities', async () => {
    const c = (await csi.controller.ControllerGetCapabilities()).capabilities.map((x: Msg) => x.rpc.type);
    for (const t of [
      'CREATE_DELETE_VOLUME',
      'PUBLISH_UNPUBLISH_VOLUME',
      'PUBLISH_READONLY',
      'CREATE_DELETE_SNAPSHOT',
      'LIST_SNAPSHOTS',
      'CLONE_VOLUME',
      'EXPAND_VOLUME',
      'LIST_VOLUMES',
      'GET_CAPACITY',
    ])
      assert.ok(c.includes(t), t);
    const n = (await csi.node.NodeGetCapabilities()).capabilities.map((x: Msg) => x.rpc.type);
    assert.deepEqual(n.sort(), ['GET_VOLUME_STATS', 'STAGE_UNSTAGE_VOLUME', 'VOLUME_CONDITION']);
    const info = await csi.node.NodeGetInfo();
    assert.equal(info.node_id, NODE_ID);
    assert.deepEqual(info.accessible_topology.segments, { 'topology.abaca.io/zone': 'nova' });
  });
});

describe('CreateVolume / DeleteVolume', { timeout: 300_000 }, () => {
  test('missing or bad fields are INVALID_ARGUMENT', async () => {
    const cases: [string, Msg][] = [
      ['no name', { name: '', volume_capabilities: [MOUNT_RWX], secrets }],
      ['no capabilities', { name: 'x', volume_capabilities: [], secrets }],
      [
        'block',
        {
          name: 'x',
          volume_capabilities: [{ block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }],
          secrets,
        },
      ],
      [
        'no access mode',
        { name: 'x', volume_capabilities: [{ mount: {}, access_mode: { mode: 'UNKNOWN' } }], secrets },
      ],
      [
        'unknown parameter',
        { name: 'x', volume_capabilities: [MOUNT_RWX], parameters: { colour: 'red' }, secrets },
      ],
      [
        'bad appendShareMetadata',
        { name: 'x', volume_capabilities: [MOUNT_RWX], parameters: { appendShareMetadata: '[1]' }, secrets },
      ],
      ['no secrets', { name: 'x', volume_capabilities: [MOUNT_RWX] }],
      ['no os-authURL', { name: 'x', volume_capabilities: [MOUNT_RWX], secrets: { 'os-password': 'p' } }],
    ];
    for (const [what, req] of cases)
      assert.equal(await codeOf(csi.controller.CreateVolume(req)), 'INVALID_ARGUMENT', what);
    assert.equal(await codeOf(csi.controller.DeleteVolume({ volume_id: '', secrets })), 'INVALID_ARGUMENT');
  });

  test('no capacity → 1 GiB; 10 GiB; same name and size → same volume; other size → ALREADY_EXISTS', async () => {
    const a = (await create('sanity-nocap')).volume;
    assert.equal(a.capacity_bytes, String(GiB));
    const b = (await create('sanity-10g', { capacity_range: { required_bytes: String(10 * GiB) } })).volume;
    assert.equal(b.capacity_bytes, String(10 * GiB));
    const again = (await create('sanity-10g', { capacity_range: { required_bytes: String(10 * GiB) } }))
      .volume;
    assert.equal(again.volume_id, b.volume_id);
    assert.equal(
      await codeOf(create('sanity-10g', { capacity_range: { required_bytes: String(11 * GiB) } })),
      'ALREADY_EXISTS',
    );
    // A limit below a whole GiB cannot be met.
    assert.equal(
      await codeOf(
        create('sanity-limit', { capacity_range: { required_bytes: '1', limit_bytes: String(GiB / 2) } }),
      ),
      'OUT_OF_RANGE',
    );
    const long = 'v'.repeat(128);
    const l = (await create(long)).volume;
    assert.equal((await api('GET', `/shares/${l.volume_id}`)).share.name, long);
    for (const v of [a, b, l]) await del(v.volume_id);
    for (const v of [a, b, l]) assert.equal(await codeOf(del(v.volume_id)), 'OK', 'a second delete is fine');
    assert.equal(await codeOf(del('00000000-0000-0000-0000-000000000000')), 'OK', 'unknown volume');
    assert.equal(await codeOf(del('not-a-uuid')), 'OK', 'unknown volume');
  });

  test('concurrent calls for one name make one share', async () => {
    const vols = await Promise.all(Array.from({ length: 6 }, () => create('sanity-race')));
    assert.equal(new Set(vols.map((v) => v.volume.volume_id)).size, 1);
    const shares = (await api('GET', '/shares/detail?name=sanity-race')).shares;
    assert.equal(shares.length, 1);
    await del(vols[0].volume.volume_id);
  });

  test('parameters: share metadata like Manila CSI, topology preferred first, unknown zone refused', async () => {
    const v = (
      await create('pvc-0000-meta', {
        parameters: {
          appendShareMetadata: '{"team":"storage"}',
          'csi.storage.k8s.io/pvc/name': 'data',
          'csi.storage.k8s.io/pvc/namespace': 'apps',
          'csi.storage.k8s.io/pv/name': 'pvc-0000-meta',
        },
        accessibility_requirements: {
          requisite: [
            { segments: { 'topology.abaca.io/zone': 'nova' } },
            { segments: { 'topology.abaca.io/zone': 'elsewhere' } },
          ],
          preferred: [
            { segments: { 'topology.abaca.io/zone': 'elsewhere' } },
            { segments: { 'topology.abaca.io/zone': 'nova' } },
          ],
        },
      })
    ).volume;
    assert.deepEqual(v.accessible_topology, [{ segments: { 'topology.abaca.io/zone': 'nova' } }]);
    const share = (await api('GET', `/shares/${v.volume_id}`)).share;
    assert.equal(share.availability_zone, 'nova');
    assert.equal(share.description, 'provisioned-by=csi.abaca.io');
    assert.deepEqual(share.metadata, {
      team: 'storage',
      'csi.storage.k8s.io/pvc/name': 'data',
      'csi.storage.k8s.io/pvc/namespace': 'apps',
      'csi.storage.k8s.io/pv/name': 'pvc-0000-meta',
      'abaca.io/csi-driver': 'csi.abaca.io',
      'abaca.io/csi-cluster': 'sanity',
    });
    await del(v.volume_id);
    assert.equal(
      await codeOf(
        create('sanity-nozone', {
          accessibility_requirements: {
            requisite: [{ segments: { 'topology.abaca.io/zone': 'mars' } }],
            preferred: [],
          },
        }),
      ),
      'RESOURCE_EXHAUSTED',
    );
  });

  test('a share that goes to error: RESOURCE_EXHAUSTED with the reason, and no share left behind', async () => {
    await api('POST', '/types', {
      share_type: { name: 'csi-dhss', extra_specs: { driver_handles_share_servers: 'True' } },
    });
    const err = await create('sanity-novalidhost', { parameters: { type: 'csi-dhss' } }).catch((e) => e);
    assert.equal(err.code, 8, err.message); // RESOURCE_EXHAUSTED
    assert.match(err.details, /sanity-novalidhost: .*(host|driver_handles_share_servers)/i);
    const left = await api('GET', '/shares/detail?name=sanity-novalidhost');
    assert.ok(
      left.shares.every((s: Msg) => s.status === 'deleting'),
      JSON.stringify(left.shares),
    );
  });

  test('from a snapshot (restore) and from a volume (clone); unknown sources are NOT_FOUND', async () => {
    const src = (await create('sanity-src')).volume;
    const snap = (
      await csi.controller.CreateSnapshot({
        name: 'sanity-src-snap',
        source_volume_id: src.volume_id,
        secrets,
      })
    ).snapshot;
    assert.equal(snap.ready_to_use, true);
    const restored = (
      await create('sanity-restored', {
        volume_content_source: { snapshot: { snapshot_id: snap.snapshot_id } },
      })
    ).volume;
    assert.deepEqual(restored.content_source.snapshot, { snapshot_id: snap.snapshot_id });
    assert.equal((await api('GET', `/shares/${restored.volume_id}`)).share.snapshot_id, snap.snapshot_id);
    const again = (
      await create('sanity-restored', {
        volume_content_source: { snapshot: { snapshot_id: snap.snapshot_id } },
      })
    ).volume;
    assert.equal(again.volume_id, restored.volume_id);
    assert.equal(await codeOf(create('sanity-restored')), 'ALREADY_EXISTS', 'same name, no source');

    const clone = (
      await create('sanity-clone', { volume_content_source: { volume: { volume_id: src.volume_id } } })
    ).volume;
    assert.deepEqual(clone.content_source.volume, { volume_id: src.volume_id });
    // The snapshot the clone was made from is removed once the clone is there.
    const snaps = (await api('GET', `/snapshots/detail?share_id=${src.volume_id}`)).snapshots;
    assert.deepEqual(
      snaps.filter((s: Msg) => s.status !== 'deleting').map((s: Msg) => s.id),
      [snap.snapshot_id],
    );

    const nosnap = { snapshot: { snapshot_id: '00000000-0000-0000-0000-000000000000' } };
    assert.equal(await codeOf(create('sanity-nosnap', { volume_content_source: nosnap })), 'NOT_FOUND');
    const novol = { volume: { volume_id: '00000000-0000-0000-0000-000000000000' } };
    assert.equal(await codeOf(create('sanity-novol', { volume_content_source: novol })), 'NOT_FOUND');

    // A volume with snapshots cannot go: FAILED_PRECONDITION, as Manila keeps it.
    assert.equal(await codeOf(del(src.volume_id)), 'FAILED_PRECONDITION');
    await csi.controller.DeleteSnapshot({ snapshot_id: snap.snapshot_id, secrets });
    for (const v of [restored, clone]) await del(v.volume_id);
    // The snapshot's deletion is asynchronous: retry the volume as the provisioner would.
    for (let i = 0; i < 100 && (await codeOf(del(src.volume_id))) !== 'OK'; i++)
      await new Promise((r) => setTimeout(r, 200));
    assert.equal(await api('GET', `/shares/${src.volume_id}`), null);
  });
});

describe('ValidateVolumeCapabilities, expansion', { timeout: 120_000 }, () => {
  test('validate: missing fields, unknown volume, confirmed, block not confirmed', async () => {
    const v = (await create('sanity-validate')).volume;
    assert.equal(
      await codeOf(csi.controller.ValidateVolumeCapabilities({ volume_capabilities: [MOUNT_RWX], secrets })),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      await codeOf(csi.controller.ValidateVolumeCapabilities({ volume_id: v.volume_id, secrets })),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      await codeOf(
        csi.controller.ValidateVolumeCapabilities({
          volume_id: '00000000-0000-0000-0000-000000000000',
          volume_capabilities: [MOUNT_RWX],
          secrets,
        }),
      ),
      'NOT_FOUND',
    );
    const ok = await csi.controller.ValidateVolumeCapabilities({
      volume_id: v.volume_id,
      volume_capabilities: [MOUNT_RWX, MOUNT_RO, MOUNT_SNW],
      secrets,
    });
    assert.equal(ok.confirmed.volume_capabilities.length, 3);
    const block = await csi.controller.ValidateVolumeCapabilities({
      volume_id: v.volume_id,
      volume_capabilities: [{ block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }],
      secrets,
    });
    assert.equal(block.confirmed, null);
    assert.match(block.message, /block volumes are not supported/);
    await del(v.volume_id);
  });

  test('expand: missing fields, unknown volume, exact new size, smaller is a no-op', async () => {
    const v = (await create('sanity-expand')).volume;
    const expand = (volume_id: string, bytes?: number) =>
      csi.controller.ControllerExpandVolume({
        volume_id,
        secrets,
        ...(bytes ? { capacity_range: { required_bytes: String(bytes) } } : {}),
      });
    assert.equal(await codeOf(expand('', 2 * GiB)), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(expand(v.volume_id)), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(expand('00000000-0000-0000-0000-000000000000', 2 * GiB)), 'NOT_FOUND');
    const r = await expand(v.volume_id, 3 * GiB);
    assert.equal(r.capacity_bytes, String(3 * GiB));
    assert.equal(r.node_expansion_required, false);
    assert.equal((await api('GET', `/shares/${v.volume_id}`)).share.size, 3);
    assert.equal((await expand(v.volume_id, 2 * GiB)).capacity_bytes, String(3 * GiB));
    await del(v.volume_id);
  });
});

describe('snapshots and listings', { timeout: 180_000 }, () => {
  test('CreateSnapshot/DeleteSnapshot codes and idempotency', async () => {
    const a = (await create('sanity-snap-a')).volume;
    const b = (await create('sanity-snap-b')).volume;
    const mk = (name: string, source_volume_id: string) =>
      csi.controller.CreateSnapshot({ name, source_volume_id, secrets });
    assert.equal(await codeOf(mk('', a.volume_id)), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(mk('s', '')), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(mk('sanity-s-nosrc', '00000000-0000-0000-0000-000000000000')), 'NOT_FOUND');
    const s1 = (await mk('sanity-s1', a.volume_id)).snapshot;
    assert.equal(s1.source_volume_id, a.volume_id);
    assert.equal(s1.size_bytes, String(GiB));
    assert.ok(Number(s1.creation_time.seconds) > 1_700_000_000);
    assert.equal((await mk('sanity-s1', a.volume_id)).snapshot.snapshot_id, s1.snapshot_id);
    assert.equal(await codeOf(mk('sanity-s1', b.volume_id)), 'ALREADY_EXISTS');
    const s128 = (await mk('s'.repeat(128), a.volume_id)).snapshot;
    const s2 = (await mk('sanity-s2', b.volume_id)).snapshot;

    const list = (req: Msg) => csi.controller.ListSnapshots({ secrets, ...req });
    const ids = (r: Msg) => r.entries.map((e: Msg) => e.snapshot.snapshot_id).sort();
    assert.deepEqual(ids(await list({ snapshot_id: s1.snapshot_id })), [s1.snapshot_id]);
    assert.deepEqual(ids(await list({ snapshot_id: '00000000-0000-0000-0000-000000000000' })), []);
    assert.deepEqual(ids(await list({ snapshot_id: s1.snapshot_id, source_volume_id: b.volume_id })), []);
    assert.deepEqual(
      ids(await list({ source_volume_id: a.volume_id })),
      [s1.snapshot_id, s128.snapshot_id].sort(),
    );
    assert.deepEqual(ids(await list({ source_volume_id: 'nosuch' })), []);
    // Paging one at a time visits every snapshot once; without secrets the controller's own are used.
    const all = ids(await csi.controller.ListSnapshots({}));
    assert.deepEqual(all, [s1.snapshot_id, s128.snapshot_id, s2.snapshot_id].sort());
    const seen: string[] = [];
    let tokenNext = '';
    for (let i = 0; i < 10; i++) {
      const page = await list({ max_entries: 1, starting_token: tokenNext });
      assert.ok(page.entries.length <= 1);
      seen.push(...page.entries.map((e: Msg) => e.snapshot.snapshot_id));
      tokenNext = page.next_token;
      if (!tokenNext) break;
    }
    assert.deepEqual(seen.sort(), all);
    assert.equal(await codeOf(list({ starting_token: 'bogus' })), 'ABORTED');

    assert.equal(
      await codeOf(csi.controller.DeleteSnapshot({ snapshot_id: '', secrets })),
      'INVALID_ARGUMENT',
    );
    assert.equal(await codeOf(csi.controller.DeleteSnapshot({ snapshot_id: 'nosuch', secrets })), 'OK');
    for (const s of [s1, s128, s2])
      await csi.controller.DeleteSnapshot({ snapshot_id: s.snapshot_id, secrets });
    for (const s of [s1, s128, s2])
      assert.equal(
        await codeOf(csi.controller.DeleteSnapshot({ snapshot_id: s.snapshot_id, secrets })),
        'OK',
      );
    for (const v of [a, b])
      for (let i = 0; i < 100 && (await codeOf(del(v.volume_id))) !== 'OK'; i++)
        await new Promise((r) => setTimeout(r, 200));
  });

  test('ListVolumes pages through the plugin’s volumes; GetCapacity per zone', async () => {
    const made = [];
    for (const n of ['sanity-lv-1', 'sanity-lv-2', 'sanity-lv-3'])
      made.push((await create(n)).volume.volume_id);
    const seen: string[] = [];
    let next = '';
    for (let i = 0; i < 20; i++) {
      const page = await csi.controller.ListVolumes({ max_entries: 2, starting_token: next });
      assert.ok(page.entries.length <= 2);
      seen.push(...page.entries.map((e: Msg) => e.volume.volume_id));
      next = page.next_token;
      if (!next) break;
    }
    for (const id of made) assert.equal(seen.filter((x) => x === id).length, 1, id);
    const everything = (await csi.controller.ListVolumes({})).entries.map((e: Msg) => e.volume.volume_id);
    assert.deepEqual([...everything].sort(), [...seen].sort());
    assert.equal(await codeOf(csi.controller.ListVolumes({ starting_token: 'x' })), 'ABORTED');

    const cap = await csi.controller.GetCapacity({
      volume_capabilities: [MOUNT_RWX],
      accessible_topology: { segments: { 'topology.abaca.io/zone': 'nova' } },
    });
    assert.ok(Number(cap.available_capacity) >= GiB, JSON.stringify(cap));
    assert.ok(Number(cap.maximum_volume_size.value) <= Number(cap.available_capacity));
    const none = await csi.controller.GetCapacity({
      accessible_topology: { segments: { 'topology.abaca.io/zone': 'mars' } },
    });
    assert.equal(none.available_capacity, '0');
    for (const id of made) await del(id);
  });
});

describe('ControllerPublishVolume / ControllerUnpublishVolume', { timeout: 120_000 }, () => {
  test('codes, the node’s access rule (active on return), readonly conflict, unpublish removes it', async () => {
    const v = (await create('sanity-publish')).volume;
    const pub = (req: Msg) =>
      csi.controller.ControllerPublishVolume({ secrets, volume_capability: MOUNT_RWX, ...req });
    assert.equal(await codeOf(pub({ node_id: NODE_ID })), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(pub({ volume_id: v.volume_id })), 'INVALID_ARGUMENT');
    assert.equal(
      await codeOf(pub({ volume_id: v.volume_id, node_id: NODE_ID, volume_capability: null })),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      await codeOf(pub({ volume_id: '00000000-0000-0000-0000-000000000000', node_id: NODE_ID })),
      'NOT_FOUND',
    );
    assert.equal(await codeOf(pub({ volume_id: v.volume_id, node_id: 'some-node' })), 'NOT_FOUND');

    const ctx = (await pub({ volume_id: v.volume_id, node_id: 'n2@10.99.0.7' })).publish_context;
    assert.match(ctx.exportLocation, new RegExp(`^abaca://.*/${v.volume_id}$`));
    assert.equal(ctx.accessLevel, 'rw');
    const rules = (await api('GET', `/share-access-rules?share_id=${v.volume_id}`)).access_list;
    assert.equal(rules.length, 1);
    assert.equal(rules[0].access_to, '10.99.0.7');
    assert.equal(rules[0].access_level, 'rw');
    assert.equal(rules[0].state, 'active');
    assert.deepEqual(rules[0].metadata, { 'abaca.io/csi-node': 'n2' });
    assert.equal(await codeOf(pub({ volume_id: v.volume_id, node_id: 'n2@10.99.0.7' })), 'OK', 'again');
    assert.equal(
      await codeOf(pub({ volume_id: v.volume_id, node_id: 'n2@10.99.0.7', readonly: true })),
      'ALREADY_EXISTS',
    );
    const ro = (await pub({ volume_id: v.volume_id, node_id: 'n3@10.99.0.8', volume_capability: MOUNT_RO }))
      .publish_context;
    assert.equal(ro.accessLevel, 'ro');

    const unpub = (node_id: string) =>
      csi.controller.ControllerUnpublishVolume({ volume_id: v.volume_id, node_id, secrets });
    assert.equal(
      await codeOf(csi.controller.ControllerUnpublishVolume({ node_id: NODE_ID, secrets })),
      'INVALID_ARGUMENT',
    );
    await unpub('n2@10.99.0.7');
    const left = (await api('GET', `/share-access-rules?share_id=${v.volume_id}`)).access_list;
    assert.deepEqual(
      left.map((r: Msg) => [r.access_to, r.access_level]),
      [['10.99.0.8', 'ro']],
    );
    assert.equal(await codeOf(unpub('n2@10.99.0.7')), 'OK', 'again');
    await unpub('n3@10.99.0.8');
    assert.deepEqual((await api('GET', `/share-access-rules?share_id=${v.volume_id}`)).access_list, []);
    await del(v.volume_id);
    assert.equal(await codeOf(unpub('n3@10.99.0.8')), 'OK', 'volume gone');
  });
});

describe('Node', { timeout: 240_000 }, () => {
  test('missing fields are INVALID_ARGUMENT; stats of a missing path NOT_FOUND', async () => {
    const n = csi.node;
    const cap = MOUNT_RWX;
    const st = path.join(work, 'nostage');
    const tg = path.join(work, 'notarget');
    assert.equal(
      await codeOf(n.NodeStageVolume({ staging_target_path: st, volume_capability: cap, secrets })),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      await codeOf(n.NodeStageVolume({ volume_id: 'v', volume_capability: cap, secrets })),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      await codeOf(n.NodeStageVolume({ volume_id: 'v', staging_target_path: st, secrets })),
      'INVALID_ARGUMENT',
    );
    assert.equal(await codeOf(n.NodeUnstageVolume({ staging_target_path: st })), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(n.NodeUnstageVolume({ volume_id: 'v' })), 'INVALID_ARGUMENT');
    const pubReq = { volume_id: 'v', staging_target_path: st, target_path: tg, volume_capability: cap };
    for (const drop of ['volume_id', 'staging_target_path', 'target_path', 'volume_capability'])
      assert.equal(
        await codeOf(n.NodePublishVolume({ ...pubReq, [drop]: undefined })),
        'INVALID_ARGUMENT',
        drop,
      );
    assert.equal(await codeOf(n.NodePublishVolume(pubReq)), 'FAILED_PRECONDITION', 'not staged');
    assert.equal(await codeOf(n.NodeUnpublishVolume({ target_path: tg })), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(n.NodeUnpublishVolume({ volume_id: 'v' })), 'INVALID_ARGUMENT');
    assert.equal(
      await codeOf(n.NodeUnpublishVolume({ volume_id: 'v', target_path: tg })),
      'OK',
      'nothing there',
    );
    assert.equal(await codeOf(n.NodeGetVolumeStats({ volume_id: 'v' })), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(n.NodeGetVolumeStats({ volume_id: 'v', volume_path: tg })), 'NOT_FOUND');
  });

  test('lifecycle create → publish → stage → publish → use → unpublish → unstage → delete, repeated', {
    skip: fuseSkip,
  }, async () => {
    const v = (await create('sanity-node')).volume;
    const ctx = (
      await csi.controller.ControllerPublishVolume({
        volume_id: v.volume_id,
        node_id: NODE_ID,
        volume_capability: MOUNT_SNW,
        secrets,
      })
    ).publish_context;
    const staging = path.join(work, 'staging');
    fs.mkdirSync(staging);
    const stage = {
      volume_id: v.volume_id,
      staging_target_path: staging,
      volume_capability: MOUNT_SNW,
      secrets,
      publish_context: ctx,
    };
    for (let round = 0; round < 2; round++) {
      const target = path.join(work, 'pods', `pod${round}`, 'mount');
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const pub = { ...stage, target_path: target, secrets: {} };
      await csi.node.NodeStageVolume(stage);
      await csi.node.NodeStageVolume(stage); // again: no second mount
      assert.equal(mountsAt(staging), 1);
      await csi.node.NodePublishVolume(pub);
      await csi.node.NodePublishVolume(pub);
      assert.equal(mountsAt(target), 1);
      fs.writeFileSync(path.join(target, `round${round}`), `written in round ${round}`);
      assert.equal(fs.readFileSync(path.join(staging, `round${round}`), 'utf8'), `written in round ${round}`);
      if (round > 0) assert.equal(fs.readFileSync(path.join(target, 'round0'), 'utf8'), 'written in round 0');
      const stats = await csi.node.NodeGetVolumeStats({ volume_id: v.volume_id, volume_path: target });
      const bytes = stats.usage.find((u: Msg) => u.unit === 'BYTES');
      assert.equal(bytes.total, String(GiB));
      assert.ok(stats.usage.find((u: Msg) => u.unit === 'INODES'));
      assert.deepEqual(stats.volume_condition, { abnormal: false, message: 'mounted' });
      // read-only publish to a second path of the same staged volume
      const roTarget = `${target}-ro`;
      await csi.node.NodePublishVolume({ ...pub, target_path: roTarget, readonly: true });
      assert.throws(() => fs.writeFileSync(path.join(roTarget, 'no'), 'x'), /EROFS/);
      assert.equal(
        await codeOf(csi.node.NodePublishVolume({ ...pub, target_path: roTarget })),
        'ALREADY_EXISTS',
      );
      for (const t of [target, roTarget]) {
        await csi.node.NodeUnpublishVolume({ volume_id: v.volume_id, target_path: t });
        await csi.node.NodeUnpublishVolume({ volume_id: v.volume_id, target_path: t });
        assert.equal(mountsAt(t), 0);
        assert.equal(fs.existsSync(t), false, 'unpublish removes the target path');
      }
      await csi.node.NodeUnstageVolume({ volume_id: v.volume_id, staging_target_path: staging });
      await csi.node.NodeUnstageVolume({ volume_id: v.volume_id, staging_target_path: staging });
      assert.equal(mountsAt(staging), 0);
    }
    await csi.controller.ControllerUnpublishVolume({ volume_id: v.volume_id, node_id: NODE_ID, secrets });
    await del(v.volume_id);
  });
});

describe('credentials', { timeout: 60_000 }, () => {
  test('a wrong password or application credential is UNAUTHENTICATED with a clear message', async () => {
    const wrong = { ...secrets, 'os-password': 'Wrong-Password-4711' };
    const err = await csi.controller
      .CreateVolume({ name: 'sanity-wrong', volume_capabilities: [MOUNT_RWX], secrets: wrong })
      .catch((e) => e);
    assert.equal(err.code, 16, err.message); // UNAUTHENTICATED
    assert.match(err.details, /identity service refused the credentials/);
    const noApp = {
      'os-authURL': secrets['os-authURL']!,
      'os-applicationCredentialID': 'nosuch',
      'os-applicationCredentialSecret': 'App-Secret-0815',
    };
    assert.equal(
      await codeOf(csi.controller.DeleteVolume({ volume_id: 'x', secrets: noApp })),
      'OK',
      'unknown id needs no API call',
    );
    assert.equal(
      await codeOf(
        csi.controller.CreateVolume({ name: 'sanity-app', volume_capabilities: [MOUNT_RWX], secrets: noApp }),
      ),
      'UNAUTHENTICATED',
    );
  });

  test('no secret value ever reaches the log', () => {
    const logs = plugin.logs();
    assert.ok(logs.includes('Controller/CreateVolume'), 'the plugin logged its calls');
    for (const secret of [PASSWORD, 'Wrong-Password-4711', 'App-Secret-0815'])
      assert.equal(logs.includes(secret), false, `a secret value is in the log`);
  });
});
