import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend, BackendCapabilities, BackendStats, PoolStats } from '../../backends/types.ts';
import {
  type ConfiguredBackend,
  matchSpec,
  type PlacementRequest,
  schedule,
  scheduleGroup,
} from '../../services/scheduler.ts';

/**
 * The filter scheduler, filter by filter, against backends that only answer stats() — as Manila
 * tests its scheduler filters one at a time.
 */

const ALL: BackendCapabilities = {
  snapshotSupport: true,
  createShareFromSnapshotSupport: true,
  revertToSnapshotSupport: true,
  mountSnapshotSupport: false,
  driverHandlesShareServers: false,
  protocols: ['NFS', 'CIFS'],
  accessTypes: ['ip'],
};

/** A backend whose stats() reports these pools (name → free GiB) and capabilities, or throws. */
function fake(
  name: string,
  pools: Record<string, number>,
  opts: { zone?: string; caps?: Partial<BackendCapabilities>; down?: string } = {},
): ConfiguredBackend {
  const stats = async (): Promise<BackendStats> => {
    if (opts.down) throw new Error(opts.down);
    return {
      backendName: name,
      driver: 'fake',
      vendorName: 'test',
      driverVersion: '0',
      capabilities: { ...ALL, ...opts.caps },
      pools: Object.entries(pools).map(
        ([pool, free]): PoolStats => ({
          name: pool,
          totalCapacityGiB: 100,
          freeCapacityGiB: free,
          allocatedCapacityGiB: 100 - free,
        }),
      ),
    };
  };
  return { backend: { name, stats } as Backend, availabilityZone: opts.zone ?? 'nova' };
}

const request = (over: Partial<PlacementRequest> = {}): PlacementRequest => ({
  size: 10,
  shareProto: 'NFS',
  specs: { driver_handles_share_servers: 'False' },
  availabilityZone: null,
  ...over,
});

const cases: {
  name: string;
  backends: ConfiguredBackend[];
  request: PlacementRequest;
  host: string | null;
  reasons: string[];
}[] = [
  {
    name: 'the pool with the most free capacity wins, across backends',
    backends: [fake('a', { p1: 20, p2: 50 }), fake('b', { q: 40 })],
    request: request(),
    host: 'srv@a#p2',
    reasons: [],
  },
  {
    name: 'a pool without room for the share is passed over, with its reason',
    backends: [fake('a', { small: 5, big: 12 })],
    request: request(),
    host: 'srv@a#big',
    reasons: ['a#small: 5 GiB free'],
  },
  {
    name: 'availability zone filter',
    backends: [fake('a', { p: 90 }, { zone: 'east' }), fake('b', { p: 30 }, { zone: 'west' })],
    request: request({ availabilityZone: 'west' }),
    host: 'srv@b#p',
    reasons: ['a: in availability zone east'],
  },
  {
    name: 'protocol filter',
    backends: [fake('a', { p: 90 }, { caps: { protocols: ['CIFS'] } }), fake('b', { p: 30 })],
    request: request(),
    host: 'srv@b#p',
    reasons: ['a: no NFS'],
  },
  {
    name: 'capability filter: a boolean spec asks for the capability',
    backends: [fake('a', { p: 90 }, { caps: { revertToSnapshotSupport: false } }), fake('b', { p: 30 })],
    request: request({ specs: { revert_to_snapshot_support: 'True' } }),
    host: 'srv@b#p',
    reasons: ['a#p: revert_to_snapshot_support is false, not True'],
  },
  {
    name: 'a spec that is False asks for nothing',
    backends: [fake('a', { p: 90 }, { caps: { revertToSnapshotSupport: false } })],
    request: request({ specs: { revert_to_snapshot_support: 'False' } }),
    host: 'srv@a#p',
    reasons: [],
  },
  {
    name: 'share_backend_name filter (plain or capabilities: scoped)',
    backends: [fake('a', { p: 90 }), fake('b', { p: 30 })],
    request: request({ specs: { share_backend_name: 'b' } }),
    host: 'srv@b#p',
    reasons: ['a: not share_backend_name b'],
  },
  {
    name: 'a share_backend_name no backend has: no placement',
    backends: [fake('a', { p: 90 })],
    request: request({ specs: { 'capabilities:share_backend_name': 'invalid_backend' } }),
    host: null,
    reasons: ['a: not share_backend_name invalid_backend'],
  },
  {
    name: "capabilities filter: an unscoped spec no backend reports as asked (Manila's vendor_name=foobar)",
    backends: [fake('a', { p: 90 }), fake('b', { p: 30 })],
    request: request({ specs: { driver_handles_share_servers: 'False', vendor_name: 'foobar' } }),
    host: null,
    reasons: ['a#p: vendor_name is test, not foobar', 'b#p: vendor_name is test, not foobar'],
  },
  {
    name: 'capabilities filter: a spec naming a capability no backend has',
    backends: [fake('a', { p: 90 })],
    request: request({ specs: { 'capabilities:frobnicate': 'yes', replication_type: 'dr' } }),
    host: null,
    reasons: [
      'a#p: does not report frobnicate (capabilities:frobnicate=yes), does not report replication_type (replication_type=dr)',
    ],
  },
  {
    name: 'capabilities filter: scoped specs of other scopes are not capabilities',
    backends: [fake('a', { p: 90 })],
    request: request({
      specs: { 'provisioning:max_share_size': '5', 'abaca:replica_count': '3', 'acme:tier': 'gold' },
    }),
    host: 'srv@a#p',
    reasons: [],
  },
  {
    name: 'capabilities filter: operators on pool capacity and names',
    backends: [fake('a', { small: 20, big: 80 })],
    request: request({
      specs: { free_capacity_gb: '>= 50', vendor_name: '<or> acme <or> test', storage_protocol: '<in> CIFS' },
    }),
    host: 'srv@a#big',
    reasons: ['a#small: free_capacity_gb is 20, not >= 50'],
  },
  {
    name: "availability_zones spec: only backends in the type's zones",
    backends: [fake('a', { p: 90 }, { zone: 'east' }), fake('b', { p: 30 }, { zone: 'west' })],
    request: request({ specs: { availability_zones: 'west, north' } }),
    host: 'srv@b#p',
    reasons: ["a: in availability zone east, not the type's west, north"],
  },
  {
    name: 'a backend whose stats() fails is skipped, not fatal',
    backends: [fake('a', { p: 90 }, { down: 'connection refused' }), fake('b', { p: 30 })],
    request: request(),
    host: 'srv@b#p',
    reasons: ['a: unavailable (connection refused)'],
  },
  {
    name: 'nothing fits: no placement, every reason',
    backends: [fake('a', { p: 5 }), fake('b', { p: 90 }, { caps: { protocols: ['CIFS'] } })],
    request: request(),
    host: null,
    reasons: ['a#p: 5 GiB free', 'b: no NFS'],
  },
  {
    name: 'driver_handles_share_servers=True is refused before any backend is asked',
    backends: [fake('a', { p: 90 })],
    request: request({ specs: { driver_handles_share_servers: 'True' } }),
    host: null,
    reasons: ['share types with driver_handles_share_servers=True are not supported'],
  },
  {
    name: 'no backend configured',
    backends: [],
    request: request(),
    host: null,
    reasons: [],
  },
];

for (const c of cases)
  test(`schedule: ${c.name}`, async () => {
    const { placement, reasons } = await schedule(c.backends, c.request, 'srv');
    assert.equal(placement?.host ?? null, c.host);
    assert.deepEqual(reasons, c.reasons);
    if (placement) {
      const chosen = c.backends.find((b) => b.backend === placement.backend);
      assert.equal(placement.availabilityZone, chosen?.availabilityZone);
    }
  });

/** Manila's extra_specs_ops.match, operator by operator (manila/tests/scheduler/test_extra_specs_ops.py). */
const matches: [unknown, string, boolean][] = [
  ['abaca', 'abaca', true],
  ['abaca', 'foobar', false],
  [true, 'True', true],
  [true, 'False', false],
  [false, 'false', true],
  [true, 'maybe', false],
  [100, '100', false],
  [100, '= 50', true],
  ['100', '= 150', false],
  ['infinite', '>= 1', false],
  ['unknown', '>= 1', false],
  [12, '== 12', true],
  [12, '!= 12', false],
  [12, '<= 12.5', true],
  ['NFS_CIFS', '<in> CIFS', true],
  ['NFS', '<in> CIFS', false],
  [true, '<is> True', true],
  ['False', '<is> true', false],
  ['b', '<or> a <or> b <or> c', true],
  ['d', '<or> a <or> b', false],
  ['abc', 's== abc', true],
  ['abc', 's!= abc', false],
  ['abc', 's< abd', true],
  ['abc', 's>= abd', false],
  [null, '<is> True', false],
  [null, 'x', false],
];
for (const [value, req, want] of matches)
  test(`matchSpec(${JSON.stringify(value)}, ${JSON.stringify(req)}) is ${want}`, () => {
    assert.equal(matchSpec(value, req), want);
  });

/** The share group scheduler: every share type's specs and zones, and the group specs, on one pool. */
const groupCases: {
  name: string;
  backends: ConfiguredBackend[];
  typeSpecs: Record<string, string>[];
  groupSpecs?: Record<string, string>;
  zone?: string;
  host: string | null;
}[] = [
  {
    name: 'no specs: the pool with the most free capacity',
    backends: [fake('a', { p1: 20 }), fake('b', { q: 40 })],
    typeSpecs: [{}, {}],
    host: 'srv@b#q',
  },
  {
    name: 'a pool must satisfy every share type of the group',
    backends: [fake('a', { p: 90 }, { caps: { snapshotSupport: false } }), fake('b', { q: 10 })],
    typeSpecs: [{ driver_handles_share_servers: 'False' }, { snapshot_support: 'True' }],
    host: 'srv@b#q',
  },
  {
    name: 'consistent_snapshot_support is not offered: such a group type finds no pool',
    backends: [fake('a', { p: 90 })],
    typeSpecs: [{}],
    groupSpecs: { consistent_snapshot_support: 'pool' },
    host: null,
  },
  {
    name: "a zone asked for, and the share types' availability_zones specs, keep to their zones",
    backends: [fake('a', { p: 90 }, { zone: 'z1' }), fake('b', { q: 10 }, { zone: 'z2' })],
    typeSpecs: [{ availability_zones: 'z2,z3' }],
    host: 'srv@b#q',
  },
  {
    name: 'a zone asked for that no backend is in: no pool',
    backends: [fake('a', { p: 90 }, { zone: 'z1' })],
    typeSpecs: [{}],
    zone: 'z9',
    host: null,
  },
];

for (const c of groupCases)
  test(`scheduleGroup: ${c.name}`, async () => {
    const { placement, reasons } = await scheduleGroup(
      c.backends,
      { typeSpecs: c.typeSpecs, groupSpecs: c.groupSpecs ?? {}, availabilityZone: c.zone ?? null },
      'srv',
    );
    assert.equal(placement?.host ?? null, c.host, reasons.join('; '));
    if (c.host === null) assert.ok(reasons.length > 0, 'a refusal says why');
  });
