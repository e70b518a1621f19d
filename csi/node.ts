/**
 * The CSI Node service: NodeStageVolume mounts the share once per node with the FUSE client at the
 * staging path; NodePublishVolume bind-mounts that into the pod's path. Nothing is remembered in
 * memory: every call looks at the mount table, so calls are idempotent and a restarted plugin
 * carries on. A mount whose FUSE process has gone (ENOTCONN) is lazily unmounted and made again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { isNotFound } from '../cli/client/index.ts';
import type { ShareApiFactory } from './client.ts';
import { checkCapability, isReadOnlyMode, ZONE_KEY } from './controller.ts';
import {
  alreadyExists,
  CsiError,
  failedPrecondition,
  fromApiError,
  internal,
  invalidArgument,
  notFound,
} from './errors.ts';
import { KeyedLock } from './keyed-lock.ts';
import { CommandFailed, type Mounter } from './mounter.ts';
import { formatNodeId } from './node-id.ts';
import { credentialsEnv, credentialsFromSecrets } from './secrets.ts';
import type { Dict, Handlers, NodePublishVolumeRequest, NodeStageVolumeRequest } from './types.ts';

export interface NodeOptions {
  nodeId: string;
  nodeIp: string;
  zone: string | null;
  mounter: Mounter;
  api: ShareApiFactory;
  maxVolumes?: number;
}

/** errno codes of a mount whose FUSE server is gone or stuck. */
const STALE = new Set(['ENOTCONN', 'EIO', 'ESTALE', 'ETIMEDOUT', 'ECONNABORTED']);

/** Why `abaca mount` failed, as a gRPC status. */
export function mountFailure(err: unknown, what: string): CsiError {
  const msg = err instanceof Error ? err.message : String(err);
  const text = `${what}: ${msg}`;
  if (/no access rule|not allowed|EACCES/i.test(msg)) return new CsiError(status.PERMISSION_DENIED, text);
  if (/401|authenticat|credentials|password/i.test(msg)) return new CsiError(status.UNAUTHENTICATED, text);
  if (/cannot reach|ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH/i.test(msg))
    return new CsiError(status.UNAVAILABLE, text);
  if (/does not have share|No share with/i.test(msg)) return new CsiError(status.NOT_FOUND, text);
  return new CsiError(status.INTERNAL, text);
}

export function createNode(opts: NodeOptions): Handlers {
  const m = opts.mounter;
  const locks = new KeyedLock();

  /** Unmounts everything on `dir`: a clean unmount first, lazily when busy or stale. */
  async function clear(dir: string): Promise<void> {
    for (let i = 0; i < 8 && m.at(dir).length; i++) {
      try {
        await m.unmount(dir, false);
      } catch {
        await m.unmount(dir, true).catch((err: Error) => {
          throw internal(`cannot unmount ${dir}: ${err.message}`);
        });
      }
    }
    if (m.at(dir).length) throw internal(`${dir} is still mounted after unmounting it`);
  }

  async function location(
    req: { volume_id: string; publish_context: Dict; volume_context: Dict; secrets: Dict },
    what: string,
  ) {
    const given = req.publish_context?.exportLocation || req.volume_context?.exportLocation;
    if (given) return given;
    // Without ControllerPublishVolume (a static PV, or a CO that skips it): ask the API.
    const api = opts.api.forCredentials(credentialsFromSecrets(req.secrets, what));
    try {
      const locs = (await api.listExportLocations(req.volume_id))
        .filter((l) => l.path.startsWith('abaca://') && !l.is_admin_only)
        .sort((a, b) => Number(b.preferred) - Number(a.preferred));
      if (!locs.length)
        throw failedPrecondition(`${what}: share ${req.volume_id} has no abaca:// export location`);
      return locs[0]!.path;
    } catch (err) {
      if (isNotFound(err)) throw notFound(`${what}: volume ${req.volume_id} does not exist`);
      throw fromApiError(err, what);
    }
  }

  async function stage(req: NodeStageVolumeRequest & { readonly?: boolean }, what: string, staging: string) {
    const existing = m.at(staging);
    const loc = await location(req, what);
    if (existing.length) {
      const h = await m.health(staging);
      if (h.ok) {
        const top = existing[existing.length - 1]!;
        if (top.source !== loc)
          throw alreadyExists(`${what}: ${staging} already has another mount (${top.source}), not ${loc}`);
        return;
      }
      if (!STALE.has(h.code)) throw internal(`${what}: ${staging} is mounted but ${h.message}`);
      await clear(staging); // the FUSE process is gone: unmount lazily and mount again
    }
    const env = credentialsEnv(credentialsFromSecrets(req.secrets, what));
    fs.mkdirSync(staging, { recursive: true });
    const ro = isReadOnlyMode(req.volume_capability) || req.publish_context?.accessLevel === 'ro';
    try {
      await m.mountShare(loc, staging, ro, env);
    } catch (err) {
      throw mountFailure(err instanceof CommandFailed ? err : err, what);
    }
  }

  async function nodeStage(req: NodeStageVolumeRequest) {
    if (!req.volume_id) throw invalidArgument('NodeStageVolume: volume_id is required');
    if (!req.staging_target_path) throw invalidArgument('NodeStageVolume: staging_target_path is required');
    checkCapability(req.volume_capability, 'NodeStageVolume');
    const staging = path.resolve(req.staging_target_path);
    const what = `NodeStageVolume ${req.volume_id} at ${staging}`;
    return locks.run(staging, async () => {
      await stage(req, what, staging);
      return {};
    });
  }

  async function nodeUnstage(req: { volume_id: string; staging_target_path: string }) {
    if (!req.volume_id) throw invalidArgument('NodeUnstageVolume: volume_id is required');
    if (!req.staging_target_path) throw invalidArgument('NodeUnstageVolume: staging_target_path is required');
    const staging = path.resolve(req.staging_target_path);
    return locks.run(staging, async () => {
      await clear(staging);
      return {};
    });
  }

  async function nodePublish(req: NodePublishVolumeRequest) {
    if (!req.volume_id) throw invalidArgument('NodePublishVolume: volume_id is required');
    if (!req.staging_target_path) throw invalidArgument('NodePublishVolume: staging_target_path is required');
    if (!req.target_path) throw invalidArgument('NodePublishVolume: target_path is required');
    checkCapability(req.volume_capability, 'NodePublishVolume');
    const staging = path.resolve(req.staging_target_path);
    const target = path.resolve(req.target_path);
    const what = `NodePublishVolume ${req.volume_id} at ${target}`;
    const ro = req.readonly || isReadOnlyMode(req.volume_capability);
    return locks.run(staging, async () => {
      if (!m.at(staging).length)
        throw failedPrecondition(`${what}: ${staging} is not staged (NodeStageVolume first)`);
      const h = await m.health(staging);
      if (!h.ok) {
        if (!STALE.has(h.code) || !Object.keys(req.secrets ?? {}).length)
          throw failedPrecondition(
            `${what}: the staged mount ${staging} is broken (${h.code}); NodeStageVolume again`,
          );
        await stage({ ...req, staging_target_path: staging }, what, staging);
      }
      const mounted = m.at(target);
      if (mounted.length) {
        const th = await m.health(target);
        if (th.ok) {
          const isRo = mounted[mounted.length - 1]!.options.includes('ro');
          if (isRo !== ro)
            throw alreadyExists(
              `${what}: already published ${isRo ? 'read-only' : 'read-write'} at ${target}`,
            );
          return {};
        }
        await clear(target); // a bind of a mount that went stale
      }
      fs.mkdirSync(target, { recursive: true });
      try {
        await m.bind(staging, target, ro);
      } catch (err) {
        throw internal(`${what}: bind mount failed: ${(err as Error).message}`);
      }
      return {};
    });
  }

  async function nodeUnpublish(req: { volume_id: string; target_path: string }) {
    if (!req.volume_id) throw invalidArgument('NodeUnpublishVolume: volume_id is required');
    if (!req.target_path) throw invalidArgument('NodeUnpublishVolume: target_path is required');
    const target = path.resolve(req.target_path);
    return locks.run(target, async () => {
      await clear(target);
      try {
        fs.rmdirSync(target);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT')
          throw internal(`NodeUnpublishVolume: cannot remove ${target}: ${(err as Error).message}`);
      }
      return {};
    });
  }

  async function stats(req: { volume_id: string; volume_path: string; staging_target_path: string }) {
    if (!req.volume_id) throw invalidArgument('NodeGetVolumeStats: volume_id is required');
    if (!req.volume_path) throw invalidArgument('NodeGetVolumeStats: volume_path is required');
    const p = path.resolve(req.volume_path);
    let exists = true;
    try {
      fs.lstatSync(p);
    } catch (err) {
      exists = (err as NodeJS.ErrnoException).code !== 'ENOENT';
    }
    if (!exists) throw notFound(`NodeGetVolumeStats: ${p} does not exist`);
    if (!m.at(p).length)
      return { usage: [], volume_condition: { abnormal: true, message: `${p} is not mounted` } };
    const h = await m.health(p);
    if (!h.ok)
      return {
        usage: [],
        volume_condition: {
          abnormal: true,
          message: `${p} does not answer (${h.code}): the FUSE process serving it has gone; NodeStageVolume mounts it again`,
        },
      };
    const s = h.stats;
    const b = (n: number | bigint) => BigInt(n) * BigInt(s.bsize);
    return {
      usage: [
        {
          unit: 'BYTES',
          total: b(s.blocks).toString(),
          available: b(s.bavail).toString(),
          used: (b(s.blocks) - b(s.bfree)).toString(),
        },
        {
          unit: 'INODES',
          total: String(s.files),
          available: String(s.ffree),
          used: String(Math.max(0, Number(s.files) - Number(s.ffree))),
        },
      ],
      volume_condition: { abnormal: false, message: 'mounted' },
    };
  }

  return {
    NodeStageVolume: nodeStage,
    NodeUnstageVolume: nodeUnstage,
    NodePublishVolume: nodePublish,
    NodeUnpublishVolume: nodeUnpublish,
    NodeGetVolumeStats: stats,
    NodeGetCapabilities: async () => ({
      capabilities: ['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'VOLUME_CONDITION'].map((type) => ({
        rpc: { type },
      })),
    }),
    NodeGetInfo: async () => ({
      node_id: formatNodeId(opts.nodeId, opts.nodeIp),
      max_volumes_per_node: String(opts.maxVolumes ?? 0),
      accessible_topology: opts.zone ? { segments: { [ZONE_KEY]: opts.zone } } : null,
    }),
  };
}
