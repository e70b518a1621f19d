/**
 * The CSI Controller service over the share API. A volume is a share (volume_id = share id, the
 * CO's name = share name); a CSI snapshot is a share snapshot. Calls are idempotent by name and
 * safe to retry: a call that cannot finish within the CO's deadline answers ABORTED and the CO's
 * retry picks up where it left off (the share, snapshot or rule it started is found by name).
 */
import { status } from '@grpc/grpc-js';
import { ApiError } from '../cli/client/errors.ts';
import { isNotFound, pythonDict } from '../cli/client/index.ts';
import type { AccessRule, Share, Snapshot } from '../cli/client/types.ts';
import { poll } from '../cli/client/wait.ts';
import type { ShareApi, ShareApiFactory } from './client.ts';
import {
  aborted,
  alreadyExists,
  CsiError,
  failedPrecondition,
  fromApiError,
  internal,
  invalidArgument,
  notFound,
  unavailable,
} from './errors.ts';
import { KeyedLock } from './keyed-lock.ts';
import { parseNodeId, ruleMatchesIp } from './node-id.ts';
import { credentialsFromSecrets, type SecretCredentials } from './secrets.ts';
import type {
  ControllerPublishVolumeRequest,
  CreateVolumeRequest,
  Snapshot as CsiSnapshot,
  Dict,
  GetCapacityRequest,
  Handlers,
  ListRequest,
  ListSnapshotsRequest,
  ValidateVolumeCapabilitiesRequest,
  Volume,
  VolumeCapability,
} from './types.ts';

export const GiB = 1n << 30n;
export const ZONE_KEY = 'topology.abaca.io/zone';
/** Shares the plugin made carry these metadata keys (ListVolumes lists by the first). */
export const META_DRIVER = 'abaca.io/csi-driver';
export const META_CLONE_OF = 'abaca.io/csi-clone-of';
export const META_CLUSTER = 'abaca.io/csi-cluster';
/** An access rule the plugin granted names its node here. */
export const META_NODE = 'abaca.io/csi-node';
/** The share protocol of CSI volumes: the native protocol of the FUSE client. */
export const SHARE_PROTO = 'NATIVE';
/** csi-provisioner's --extra-create-metadata keys, recorded on the share as they come. */
const PROVISIONER_KEYS = [
  'csi.storage.k8s.io/pvc/name',
  'csi.storage.k8s.io/pvc/namespace',
  'csi.storage.k8s.io/pv/name',
];
const PARAMETERS = ['type', 'availability', 'autoTopology', 'appendShareMetadata', ...PROVISIONER_KEYS];

export interface ControllerOptions {
  driverName: string;
  api: ShareApiFactory;
  /** How long a call waits for the share API before answering ABORTED (below the sidecars' 10 s). */
  opTimeoutMs: number;
  /** The controller's own credentials (secrets-dir), for the calls that carry no secrets. */
  defaultSecrets?: Dict | null;
  clusterId?: string | null;
}

// ---- validation (pure, table-tested) ----

/** Bytes → whole GiB for a capacity range; 0 or unset → 1 GiB. */
export function sizeGiB(range: { required_bytes: string; limit_bytes: string } | null, min = 1): number {
  const required = BigInt(range?.required_bytes || '0');
  const limit = BigInt(range?.limit_bytes || '0');
  if (required < 0n || limit < 0n) throw invalidArgument('capacity_range: bytes must not be negative');
  if (limit > 0n && required > limit)
    throw invalidArgument(`capacity_range: required_bytes ${required} exceeds limit_bytes ${limit}`);
  let gib = (required + GiB - 1n) / GiB;
  if (gib < BigInt(min)) gib = BigInt(min);
  if (limit > 0n && gib * GiB > limit)
    throw new CsiError(
      status.OUT_OF_RANGE,
      `capacity_range: shares come in whole GiB; ${gib} GiB exceeds limit_bytes ${limit}`,
    );
  return Number(gib);
}

/** Throws INVALID_ARGUMENT for capabilities abaca cannot serve; returns whether all are read-only. */
export function checkCapabilities(caps: VolumeCapability[] | null | undefined, rpc: string): void {
  if (!caps || caps.length === 0) throw invalidArgument(`${rpc}: volume_capabilities are required`);
  for (const c of caps) checkCapability(c, rpc);
}

export function checkCapability(c: VolumeCapability | null | undefined, rpc: string): void {
  if (!c) throw invalidArgument(`${rpc}: volume_capability is required`);
  if (c.block || c.access_type === 'block')
    throw invalidArgument(
      `${rpc}: block volumes are not supported: abaca shares are file systems (use a mount volume)`,
    );
  if (!c.mount && c.access_type !== 'mount')
    throw invalidArgument(`${rpc}: the capability has no access type (mount)`);
  const mode = c.access_mode?.mode;
  if (!mode || mode === 'UNKNOWN') throw invalidArgument(`${rpc}: the capability has no access mode`);
}

export function isReadOnlyMode(c: VolumeCapability | null | undefined): boolean {
  const m = c?.access_mode?.mode;
  return m === 'SINGLE_NODE_READER_ONLY' || m === 'MULTI_NODE_READER_ONLY';
}

export interface VolumeParams {
  type: string | null;
  availability: string | null;
  autoTopology: boolean;
  metadata: Record<string, string>;
}

export function parseParameters(p: Dict): VolumeParams {
  const unknown = Object.keys(p).filter((k) => !PARAMETERS.includes(k));
  if (unknown.length)
    throw invalidArgument(
      `CreateVolume: unknown StorageClass parameter(s) ${unknown.join(', ')}; known: ${PARAMETERS.slice(0, 4).join(', ')}`,
    );
  const metadata: Record<string, string> = {};
  if (p.appendShareMetadata) {
    let extra: unknown;
    try {
      extra = JSON.parse(p.appendShareMetadata);
    } catch {
      throw invalidArgument('CreateVolume: appendShareMetadata must be a JSON object of strings');
    }
    if (!extra || typeof extra !== 'object' || Array.isArray(extra))
      throw invalidArgument('CreateVolume: appendShareMetadata must be a JSON object of strings');
    for (const [k, v] of Object.entries(extra)) {
      if (typeof v !== 'string')
        throw invalidArgument(`CreateVolume: appendShareMetadata value of ${k} must be a string`);
      metadata[k] = v;
    }
  }
  for (const k of PROVISIONER_KEYS) if (p[k]) metadata[k] = p[k];
  const auto = p.autoTopology ?? 'true';
  if (auto !== 'true' && auto !== 'false')
    throw invalidArgument('CreateVolume: autoTopology must be true or false');
  return {
    type: p.type || null,
    availability: p.availability || null,
    autoTopology: auto === 'true',
    metadata,
  };
}

/** Zones named by a topology requirement, preferred first, each once. */
export function requestedZones(req: CreateVolumeRequest['accessibility_requirements']): string[] {
  if (!req) return [];
  const zones = [...req.preferred, ...req.requisite]
    .map((t) => t.segments[ZONE_KEY])
    .filter((z): z is string => !!z);
  return [...new Set(zones)];
}

/** A paging token: the offset into the list, as a decimal string. */
export function parseToken(token: string, rpc: string): number {
  if (!token) return 0;
  if (!/^\d{1,9}$/.test(token))
    throw aborted(`${rpc}: starting_token ${JSON.stringify(token)} is not one this plugin gave`);
  return Number(token);
}

/** Manila user message detail ids → gRPC codes (Manila CSI's mapping, for abaca's ids). */
export function codeForDetail(detailId: string | undefined): (typeof status)[keyof typeof status] {
  switch (detailId) {
    case '002': // no valid host: no backend has the capacity or capabilities asked for
      return status.RESOURCE_EXHAUSTED;
    case '104': // the driver refused (a shrink below use)
      return status.FAILED_PRECONDITION;
    default:
      return status.INTERNAL;
  }
}

const bytes = (gib: number) => (BigInt(gib) * GiB).toString();
const isUuidLike = (s: string) => /^[0-9a-fA-F-]{8,64}$/.test(s);

function timestamp(iso: string | null): { seconds: string; nanos: number } | null {
  if (!iso) return null;
  const ms = Date.parse(/Z|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  if (Number.isNaN(ms)) return null;
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

export function createController(opts: ControllerOptions): Handlers {
  const locks = new KeyedLock();
  const budget = opts.opTimeoutMs;

  const apiFor = (secrets: Dict, rpc: string): ShareApi =>
    opts.api.forCredentials(credentialsFromSecrets(secrets, rpc));
  const ownApi = (rpc: string): ShareApi => {
    if (!opts.defaultSecrets)
      throw failedPrecondition(
        `${rpc}: this call carries no secrets; start the controller with --secrets-dir (a mounted Secret with os-authURL and credentials)`,
      );
    return opts.api.forCredentials(credentialsFromSecrets(opts.defaultSecrets, rpc) as SecretCredentials);
  };

  /** Calls the API, turning its errors into gRPC statuses named after `what`. */
  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw fromApiError(err, what);
    }
  }

  async function getShareOrNull(api: ShareApi, id: string, what: string): Promise<Share | null> {
    if (!isUuidLike(id)) return null;
    try {
      return await api.getShare(id);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw fromApiError(err, what);
    }
  }

  async function getSnapshotOrNull(api: ShareApi, id: string, what: string): Promise<Snapshot | null> {
    if (!isUuidLike(id)) return null;
    try {
      return await api.getSnapshot(id);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw fromApiError(err, what);
    }
  }

  /** Polls quickly (50 ms, growing to 0.5 s) for up to the call's budget. */
  const fastPoll = <T>(
    fetch: () => Promise<T | null>,
    judge: (v: T | null) => 'done' | 'failed' | 'pending',
    timeoutMs = budget,
  ) => poll<T>(fetch, judge, () => null, { timeoutMs, initialDelayMs: 50, maxDelayMs: 500, factor: 1.3 });

  /** Why a resource went to an error status, from its latest user message. */
  async function failure(api: ShareApi, id: string, what: string, statusName: string): Promise<CsiError> {
    const msg = await api.latestUserMessage(id).catch(() => null);
    const text = msg ? msg.user_message : `status ${statusName}, no user message`;
    return new CsiError(codeForDetail(msg?.detail_id), `${what}: ${text}`);
  }

  /** Waits for a share to be available (with `size`); ABORTED when the budget runs out first. */
  async function awaitShare(api: ShareApi, id: string, what: string, size?: number): Promise<Share> {
    const r = await fastPoll<Share>(
      () => api.getShare(id),
      (s) =>
        !s || s.status.includes('error')
          ? 'failed'
          : s.status === 'available' && (size === undefined || s.size >= size)
            ? 'done'
            : 'pending',
    ).catch((err) => {
      throw fromApiError(err, what);
    });
    const s = r.value!;
    if (r.verdict === 'done') return s;
    if (r.verdict === 'failed') throw await failure(api, id, what, s.status);
    throw aborted(`${what}: share ${id} is still ${s.status}; retry`);
  }

  function volumeOf(share: Share, source: Volume['content_source']): Volume {
    return {
      capacity_bytes: bytes(share.size),
      volume_id: share.id,
      volume_context: { shareID: share.id, ...(share.name ? { shareName: share.name } : {}) },
      content_source: source,
      accessible_topology: share.availability_zone
        ? [{ segments: { [ZONE_KEY]: share.availability_zone } }]
        : [],
    };
  }

  function snapshotOf(s: Snapshot): CsiSnapshot {
    return {
      size_bytes: bytes(s.share_size ?? s.size),
      snapshot_id: s.id,
      source_volume_id: s.share_id,
      creation_time: timestamp(s.created_at),
      ready_to_use: s.status === 'available',
      group_snapshot_id: '',
    };
  }

  async function chooseZone(
    api: ShareApi,
    params: VolumeParams,
    req: CreateVolumeRequest,
  ): Promise<string | null> {
    if (params.availability) return params.availability;
    if (!params.autoTopology) return null;
    const wanted = requestedZones(req.accessibility_requirements);
    if (!wanted.length) return null;
    const known = (
      await call('CreateVolume: listing availability zones', () => api.listAvailabilityZones())
    ).map((z) => z.name);
    const zone = wanted.find((z) => known.includes(z));
    if (!zone)
      throw new CsiError(
        status.RESOURCE_EXHAUSTED,
        `CreateVolume: none of the requested zones (${wanted.join(', ')}) has storage; zones: ${known.join(', ') || 'none'}`,
      );
    return zone;
  }

  /** The snapshot a clone is made from, made (once, by name) on the source share. */
  async function cloneSnapshot(api: ShareApi, name: string, source: Share): Promise<Snapshot> {
    const snapName = `csi-clone-source-${name}`.slice(0, 255);
    const found = (
      await call('CreateVolume: listing snapshots', () => api.listSnapshots({ name: snapName }))
    ).find((s) => s.name === snapName && s.share_id === source.id);
    const snap =
      found ??
      (await call(`CreateVolume: snapshot of ${source.id} to clone`, () =>
        api.createSnapshot({ share_id: source.id, name: snapName, description: `clone source for ${name}` }),
      ));
    const r = await fastPoll<Snapshot>(
      () => api.getSnapshot(snap.id),
      (s) => (!s || s.status.includes('error') ? 'failed' : s.status === 'available' ? 'done' : 'pending'),
    );
    if (r.verdict === 'done') return r.value!;
    if (r.verdict === 'failed') {
      const err = await failure(
        api,
        snap.id,
        `CreateVolume: snapshot of ${source.id} to clone`,
        r.value?.status ?? '',
      );
      await api.deleteSnapshot(snap.id).catch(() => {});
      throw err;
    }
    throw aborted(`CreateVolume: the snapshot to clone ${source.id} from is still ${r.value?.status}; retry`);
  }

  async function createVolume(req: CreateVolumeRequest) {
    if (!req.name) throw invalidArgument('CreateVolume: name is required');
    if (req.name.length > 255) throw invalidArgument('CreateVolume: name must be at most 255 characters');
    checkCapabilities(req.volume_capabilities, 'CreateVolume');
    const params = parseParameters(req.parameters ?? {});
    let size = sizeGiB(req.capacity_range);
    const api = apiFor(req.secrets, 'CreateVolume');
    const what = `CreateVolume ${req.name}`;
    return locks.run(`volume/${req.name}`, async () => {
      const src = req.volume_content_source;
      let fromSnapshot: Snapshot | null = null;
      let fromVolume: Share | null = null;
      if (src?.snapshot) {
        fromSnapshot = await getSnapshotOrNull(api, src.snapshot.snapshot_id, what);
        if (!fromSnapshot)
          throw notFound(`${what}: source snapshot ${src.snapshot.snapshot_id} does not exist`);
        if (fromSnapshot.status === 'creating')
          throw unavailable(`${what}: source snapshot ${fromSnapshot.id} is still creating`);
        if (fromSnapshot.status !== 'available')
          throw failedPrecondition(`${what}: source snapshot ${fromSnapshot.id} is ${fromSnapshot.status}`);
        size = Math.max(size, sizeGiB(req.capacity_range, fromSnapshot.share_size ?? fromSnapshot.size));
      } else if (src?.volume) {
        fromVolume = await getShareOrNull(api, src.volume.volume_id, what);
        if (!fromVolume) throw notFound(`${what}: source volume ${src.volume.volume_id} does not exist`);
        if (fromVolume.status !== 'available')
          throw failedPrecondition(`${what}: source volume ${fromVolume.id} is ${fromVolume.status}`);
        size = Math.max(size, sizeGiB(req.capacity_range, fromVolume.size));
      }
      const source = src?.snapshot
        ? { snapshot: { snapshot_id: src.snapshot.snapshot_id } }
        : src?.volume
          ? { volume: { volume_id: src.volume.volume_id } }
          : null;

      const named = (await call(`${what}: listing shares`, () => api.listShares({ name: req.name }))).filter(
        (s) => s.name === req.name,
      );
      if (named.length > 1)
        throw internal(
          `${what}: ${named.length} shares are named ${req.name} (${named.map((s) => s.id).join(', ')})`,
        );
      let share = named[0];
      if (share) {
        const differs: string[] = [];
        if (share.size !== size) differs.push(`size ${share.size} GiB, not ${size} GiB`);
        if (fromSnapshot && share.snapshot_id !== fromSnapshot.id)
          differs.push(`not made from snapshot ${fromSnapshot.id}`);
        if (fromVolume && share.metadata?.[META_CLONE_OF] !== fromVolume.id)
          differs.push(`not a clone of ${fromVolume.id}`);
        if (!src && (share.snapshot_id || share.metadata?.[META_CLONE_OF]))
          differs.push('made from a content source');
        if (params.type && share.share_type_name !== params.type && share.share_type !== params.type)
          differs.push(`share type ${share.share_type_name}, not ${params.type}`);
        if (differs.length)
          throw alreadyExists(
            `${what}: a volume of that name exists with other parameters (${differs.join('; ')})`,
          );
      } else {
        const zone = fromSnapshot || fromVolume ? null : await chooseZone(api, params, req);
        let snapshotId: string | null = fromSnapshot?.id ?? null;
        if (fromVolume) snapshotId = (await cloneSnapshot(api, req.name, fromVolume)).id;
        const metadata: Record<string, string> = {
          ...params.metadata,
          [META_DRIVER]: opts.driverName,
          ...(opts.clusterId ? { [META_CLUSTER]: opts.clusterId } : {}),
          ...(fromVolume ? { [META_CLONE_OF]: fromVolume.id } : {}),
        };
        share = await call(`${what}: creating the share`, () =>
          api.createShare({
            share_proto: SHARE_PROTO,
            size,
            name: req.name,
            description: `provisioned-by=${opts.driverName}`,
            share_type: params.type,
            availability_zone: zone,
            metadata,
            snapshot_id: snapshotId,
          }),
        );
      }
      let ready: Share;
      try {
        ready = await awaitShare(api, share.id, what);
      } catch (err) {
        // A share that failed is removed, so the CO's retry makes a new one.
        if (err instanceof CsiError && err.code !== status.ABORTED)
          await api.deleteShare(share.id).catch(() => {});
        throw err;
      }
      if (fromVolume && ready.snapshot_id) await api.deleteSnapshot(ready.snapshot_id).catch(() => {}); // the clone no longer needs it
      return { volume: volumeOf(ready, source) };
    });
  }

  async function deleteVolume(req: { volume_id: string; secrets: Dict }) {
    if (!req.volume_id) throw invalidArgument('DeleteVolume: volume_id is required');
    const api = apiFor(req.secrets, 'DeleteVolume');
    const what = `DeleteVolume ${req.volume_id}`;
    return locks.run(`delete/${req.volume_id}`, async () => {
      const share = await getShareOrNull(api, req.volume_id, what);
      if (!share) return {};
      if (share.status !== 'deleting') {
        try {
          await api.deleteShare(share.id);
        } catch (err) {
          if (isNotFound(err)) return {};
          // Manila refuses a share that still has snapshots, or is busy, with 403 (400 in older
          // versions): a precondition for the CO, not a permission problem.
          if (err instanceof ApiError && (err.status === 400 || err.status === 403))
            throw failedPrecondition(`${what}: ${err.message}`);
          throw fromApiError(err, what);
        }
      }
      const r = await fastPoll<Share>(
        async () => {
          try {
            return await api.getShare(share.id);
          } catch (err) {
            if (isNotFound(err)) return null;
            throw err;
          }
        },
        (s) => (!s ? 'done' : s.status.includes('error') ? 'failed' : 'pending'),
      ).catch((err) => {
        throw fromApiError(err, what);
      });
      if (r.verdict === 'failed') throw await failure(api, share.id, what, r.value!.status);
      // Still deleting when the budget ran out: the deletion goes on; a retry finds it gone.
      return {};
    });
  }

  async function exportLocation(api: ShareApi, share: Share, what: string): Promise<string> {
    const locs = (await call(`${what}: export locations`, () => api.listExportLocations(share.id)))
      .filter((l) => l.path.startsWith('abaca://') && !l.is_admin_only)
      .sort((a, b) => Number(b.preferred) - Number(a.preferred));
    if (!locs.length) throw failedPrecondition(`${what}: share ${share.id} has no abaca:// export location`);
    return locs[0]!.path;
  }

  async function publish(req: ControllerPublishVolumeRequest) {
    if (!req.volume_id) throw invalidArgument('ControllerPublishVolume: volume_id is required');
    if (!req.node_id) throw invalidArgument('ControllerPublishVolume: node_id is required');
    checkCapability(req.volume_capability, 'ControllerPublishVolume');
    const what = `ControllerPublishVolume ${req.volume_id} to ${req.node_id}`;
    const api = apiFor(req.secrets, 'ControllerPublishVolume');
    const share = await getShareOrNull(api, req.volume_id, what);
    if (!share) throw notFound(`${what}: volume ${req.volume_id} does not exist`);
    const node = parseNodeId(req.node_id);
    if (!node)
      throw notFound(`${what}: node ${req.node_id} is not a node of this driver (node ids are NAME@IP)`);
    if (share.status !== 'available' && share.status !== 'extending')
      throw failedPrecondition(`${what}: share ${share.id} is ${share.status}`);
    const level = req.readonly || isReadOnlyMode(req.volume_capability) ? 'ro' : 'rw';
    return locks.run(`publish/${share.id}/${node.ip}`, async () => {
      const rules = await call(`${what}: access rules`, () => api.listAccessRules(share.id));
      let rule: AccessRule | undefined = rules.find(
        (r) => r.access_type === 'ip' && ruleMatchesIp(r.access_to, node.ip),
      );
      if (rule && rule.state === 'error') {
        await call(`${what}: removing a failed rule`, () => api.denyAccess(share.id, rule!.id));
        rule = undefined;
      }
      if (rule && rule.access_level !== level)
        throw alreadyExists(
          `${what}: the volume is already published to ${node.ip} ${rule.access_level}; unpublish it before publishing ${level}`,
        );
      if (!rule) {
        try {
          rule = await api.allowAccess(share.id, {
            access_type: 'ip',
            access_to: node.ip,
            access_level: level,
            metadata: { [META_NODE]: node.name },
          });
        } catch (err) {
          throw fromApiError(err, `${what}: granting ${level} access to ${node.ip}`);
        }
      }
      const ruleId = rule.id;
      const r = await fastPoll<AccessRule>(
        () => api.getAccessRule(ruleId),
        (a) => (!a || a.state === 'error' ? 'failed' : a.state === 'active' ? 'done' : 'pending'),
      ).catch((err) => {
        throw fromApiError(err, what);
      });
      if (r.verdict === 'failed') {
        const err = await failure(api, ruleId, `${what}: the access rule for ${node.ip}`, 'error');
        await api.denyAccess(share.id, ruleId).catch(() => {});
        throw err;
      }
      if (r.verdict === 'pending')
        throw aborted(`${what}: the access rule for ${node.ip} is still ${r.value?.state}; retry`);
      return {
        publish_context: {
          exportLocation: await exportLocation(api, share, what),
          shareID: share.id,
          accessLevel: level,
        },
      };
    });
  }

  async function unpublish(req: { volume_id: string; node_id: string; secrets: Dict }) {
    if (!req.volume_id) throw invalidArgument('ControllerUnpublishVolume: volume_id is required');
    if (!req.node_id) throw invalidArgument('ControllerUnpublishVolume: node_id is required');
    const what = `ControllerUnpublishVolume ${req.volume_id} from ${req.node_id}`;
    const api = apiFor(req.secrets, 'ControllerUnpublishVolume');
    const node = parseNodeId(req.node_id);
    const share = await getShareOrNull(api, req.volume_id, what);
    if (!share || !node) return {}; // nothing of ours can be there
    return locks.run(`publish/${share.id}/${node.ip}`, async () => {
      const rules = (await call(`${what}: access rules`, () => api.listAccessRules(share.id))).filter(
        (r) =>
          r.access_type === 'ip' &&
          ruleMatchesIp(r.access_to, node.ip) &&
          r.metadata?.[META_NODE] === node.name,
      );
      for (const rule of rules) {
        if (rule.state === 'queued_to_deny' || rule.state === 'denying') continue;
        try {
          await api.denyAccess(share.id, rule.id);
        } catch (err) {
          if (!isNotFound(err)) throw fromApiError(err, `${what}: removing the rule for ${node.ip}`);
        }
      }
      for (const rule of rules) {
        const r = await fastPoll<AccessRule>(
          async () => {
            try {
              return await api.getAccessRule(rule.id);
            } catch (err) {
              if (isNotFound(err)) return null;
              throw err;
            }
          },
          (a) => (!a ? 'done' : a.state === 'error' ? 'failed' : 'pending'),
        ).catch((err) => {
          throw fromApiError(err, what);
        });
        if (r.verdict === 'failed') throw internal(`${what}: removing the rule for ${node.ip} failed`);
        if (r.verdict === 'pending')
          throw aborted(`${what}: the rule for ${node.ip} is still being removed; retry`);
      }
      return {};
    });
  }

  async function validate(req: ValidateVolumeCapabilitiesRequest) {
    if (!req.volume_id) throw invalidArgument('ValidateVolumeCapabilities: volume_id is required');
    if (!req.volume_capabilities?.length)
      throw invalidArgument('ValidateVolumeCapabilities: volume_capabilities are required');
    const what = `ValidateVolumeCapabilities ${req.volume_id}`;
    const api = apiFor(req.secrets, 'ValidateVolumeCapabilities');
    const share = await getShareOrNull(api, req.volume_id, what);
    if (!share) throw notFound(`${what}: volume ${req.volume_id} does not exist`);
    try {
      checkCapabilities(req.volume_capabilities, 'ValidateVolumeCapabilities');
      if (Object.keys(req.parameters ?? {}).length) parseParameters(req.parameters);
    } catch (err) {
      if (err instanceof CsiError) return { confirmed: null, message: err.message };
      throw err;
    }
    return {
      confirmed: {
        volume_context: req.volume_context,
        volume_capabilities: req.volume_capabilities,
        parameters: req.parameters,
        mutable_parameters: {},
      },
      message: '',
    };
  }

  async function listVolumes(req: ListRequest) {
    if (req.max_entries < 0) throw invalidArgument('ListVolumes: max_entries must not be negative');
    const offset = parseToken(req.starting_token, 'ListVolumes');
    const api = ownApi('ListVolumes');
    const query = {
      metadata: pythonDict({ [META_DRIVER]: opts.driverName }),
      sort_key: 'created_at',
      sort_dir: 'asc',
      ...(req.max_entries ? { limit: req.max_entries + 1, offset } : offset ? { offset } : {}),
    };
    const rows = await call('ListVolumes', () => api.listShares(query));
    const page = req.max_entries ? rows.slice(0, req.max_entries) : rows;
    return {
      entries: page.map((s) => ({
        volume: volumeOf(
          s,
          s.snapshot_id && !s.metadata?.[META_CLONE_OF] ? { snapshot: { snapshot_id: s.snapshot_id } } : null,
        ),
        status: null,
      })),
      next_token: req.max_entries && rows.length > req.max_entries ? String(offset + req.max_entries) : '',
    };
  }

  async function getCapacity(req: GetCapacityRequest) {
    if (req.volume_capabilities?.length) checkCapabilities(req.volume_capabilities, 'GetCapacity');
    const params = parseParameters(req.parameters ?? {});
    const zone = req.accessible_topology?.segments?.[ZONE_KEY] ?? params.availability;
    const api = ownApi('GetCapacity');
    let poolFree: number | null = null;
    let largest: number | null = null;
    try {
      const pools = await api.listPools({}, true);
      const inZone = pools.filter((p) => !zone || p.capabilities?.availability_zone === zone);
      const free = inZone.map((p) => Math.max(0, Math.floor(Number(p.capabilities?.free_capacity_gb ?? 0))));
      poolFree = free.reduce((a, b) => a + b, 0);
      largest = free.length ? Math.max(...free) : 0;
    } catch (err) {
      // Pools are an admin's view; a project's credentials see only its quota.
      if (!(err instanceof ApiError && err.status === 403)) throw fromApiError(err, 'GetCapacity: pools');
    }
    const limits = await call('GetCapacity: limits', () => api.getLimits());
    const max = limits.absolute.maxTotalShareGigabytes ?? -1;
    const used = limits.absolute.totalShareGigabytesUsed ?? 0;
    const quotaFree = max < 0 ? null : Math.max(0, max - used);
    const known = [poolFree, quotaFree].filter((n): n is number => n !== null);
    const gib = known.length ? Math.min(...known) : 0;
    const maxVolume = largest === null ? gib : Math.min(largest, quotaFree ?? largest);
    return {
      available_capacity: bytes(gib),
      maximum_volume_size: { value: bytes(maxVolume) },
      minimum_volume_size: { value: bytes(1) },
    };
  }

  async function createSnapshot(req: {
    name: string;
    source_volume_id: string;
    secrets: Dict;
    parameters: Dict;
  }) {
    if (!req.name) throw invalidArgument('CreateSnapshot: name is required');
    if (!req.source_volume_id) throw invalidArgument('CreateSnapshot: source_volume_id is required');
    if (req.name.length > 255) throw invalidArgument('CreateSnapshot: name must be at most 255 characters');
    const what = `CreateSnapshot ${req.name}`;
    const api = apiFor(req.secrets, 'CreateSnapshot');
    return locks.run(`snapshot/${req.name}`, async () => {
      const named = (
        await call(`${what}: listing snapshots`, () => api.listSnapshots({ name: req.name }))
      ).filter((s) => s.name === req.name);
      let snap = named[0];
      if (snap && snap.share_id !== req.source_volume_id)
        throw alreadyExists(`${what}: a snapshot of that name exists of another volume (${snap.share_id})`);
      if (!snap) {
        const share = await getShareOrNull(api, req.source_volume_id, what);
        if (!share) throw notFound(`${what}: source volume ${req.source_volume_id} does not exist`);
        snap = await call(`${what}: creating the snapshot`, () =>
          api.createSnapshot({
            share_id: share.id,
            name: req.name,
            description: `provisioned-by=${opts.driverName}`,
          }),
        );
      }
      const id = snap.id;
      const r = await fastPoll<Snapshot>(
        () => api.getSnapshot(id),
        (s) => (!s || s.status.includes('error') ? 'failed' : s.status === 'available' ? 'done' : 'pending'),
      ).catch((err) => {
        throw fromApiError(err, what);
      });
      if (r.verdict === 'failed') {
        const err = await failure(api, id, what, r.value?.status ?? 'error');
        await api.deleteSnapshot(id).catch(() => {});
        throw err;
      }
      // Still creating: ready_to_use false; the snapshotter asks again.
      return { snapshot: snapshotOf(r.value!) };
    });
  }

  async function deleteSnapshot(req: { snapshot_id: string; secrets: Dict }) {
    if (!req.snapshot_id) throw invalidArgument('DeleteSnapshot: snapshot_id is required');
    const what = `DeleteSnapshot ${req.snapshot_id}`;
    const api = apiFor(req.secrets, 'DeleteSnapshot');
    const snap = await getSnapshotOrNull(api, req.snapshot_id, what);
    if (!snap || snap.status === 'deleting') return {};
    try {
      await api.deleteSnapshot(snap.id);
    } catch (err) {
      if (isNotFound(err)) return {};
      if (err instanceof ApiError && err.status === 400) throw failedPrecondition(`${what}: ${err.message}`);
      throw fromApiError(err, what);
    }
    return {};
  }

  async function listSnapshots(req: ListSnapshotsRequest) {
    if (req.max_entries < 0) throw invalidArgument('ListSnapshots: max_entries must not be negative');
    const offset = parseToken(req.starting_token, 'ListSnapshots');
    const api = Object.keys(req.secrets ?? {}).length
      ? apiFor(req.secrets, 'ListSnapshots')
      : ownApi('ListSnapshots');
    if (req.snapshot_id) {
      const s = await getSnapshotOrNull(api, req.snapshot_id, 'ListSnapshots');
      const hit = s && (!req.source_volume_id || s.share_id === req.source_volume_id) ? [s] : [];
      return { entries: hit.map((x) => ({ snapshot: snapshotOf(x) })), next_token: '' };
    }
    if (req.source_volume_id && !isUuidLike(req.source_volume_id)) return { entries: [], next_token: '' };
    const query = {
      sort_key: 'created_at',
      sort_dir: 'asc',
      ...(req.source_volume_id ? { share_id: req.source_volume_id } : {}),
      ...(req.max_entries ? { limit: req.max_entries + 1, offset } : offset ? { offset } : {}),
    };
    const rows = await call('ListSnapshots', () => api.listSnapshots(query));
    const page = req.max_entries ? rows.slice(0, req.max_entries) : rows;
    return {
      entries: page.map((s) => ({ snapshot: snapshotOf(s) })),
      next_token: req.max_entries && rows.length > req.max_entries ? String(offset + req.max_entries) : '',
    };
  }

  async function expand(req: {
    volume_id: string;
    capacity_range: CreateVolumeRequest['capacity_range'];
    secrets: Dict;
    volume_capability: VolumeCapability | null;
  }) {
    if (!req.volume_id) throw invalidArgument('ControllerExpandVolume: volume_id is required');
    if (!req.capacity_range) throw invalidArgument('ControllerExpandVolume: capacity_range is required');
    if (req.volume_capability) checkCapability(req.volume_capability, 'ControllerExpandVolume');
    const size = sizeGiB(req.capacity_range);
    const what = `ControllerExpandVolume ${req.volume_id}`;
    const api = apiFor(req.secrets, 'ControllerExpandVolume');
    return locks.run(`expand/${req.volume_id}`, async () => {
      const share = await getShareOrNull(api, req.volume_id, what);
      if (!share) throw notFound(`${what}: volume ${req.volume_id} does not exist`);
      if (share.size >= size && share.status === 'available')
        return { capacity_bytes: bytes(share.size), node_expansion_required: false };
      if (share.status === 'available') {
        await call(`${what}: extending to ${size} GiB`, () => api.extendShare(share.id, size));
      } else if (share.status !== 'extending') {
        throw failedPrecondition(`${what}: share ${share.id} is ${share.status}`);
      }
      const done = await awaitShare(api, share.id, what, size);
      return { capacity_bytes: bytes(done.size), node_expansion_required: false };
    });
  }

  return {
    CreateVolume: createVolume,
    DeleteVolume: deleteVolume,
    ControllerPublishVolume: publish,
    ControllerUnpublishVolume: unpublish,
    ValidateVolumeCapabilities: validate,
    ListVolumes: listVolumes,
    GetCapacity: getCapacity,
    CreateSnapshot: createSnapshot,
    DeleteSnapshot: deleteSnapshot,
    ListSnapshots: listSnapshots,
    ControllerExpandVolume: expand,
    ControllerGetCapabilities: async () => ({
      capabilities: [
        'CREATE_DELETE_VOLUME',
        'PUBLISH_UNPUBLISH_VOLUME',
        'PUBLISH_READONLY',
        'CREATE_DELETE_SNAPSHOT',
        'LIST_SNAPSHOTS',
        'CLONE_VOLUME',
        'EXPAND_VOLUME',
        ...(opts.defaultSecrets ? ['LIST_VOLUMES', 'GET_CAPACITY'] : []),
      ].map((type) => ({ rpc: { type } })),
    }),
  };
}
