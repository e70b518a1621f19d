/**
 * The Manila v2 API as typed methods over a Session. Every request carries the microversion
 * header; paths are project-less (`/v2/shares`), which the catalog's `/v2` endpoint serves.
 */
import { ApiError } from './errors.ts';
import type { Query } from './http.ts';
import type { Session } from './session.ts';
import type {
  AccessRule,
  AvailabilityZone,
  Brick,
  BrickJob,
  ExportLocation,
  Limits,
  Message,
  Pool,
  QuotaSet,
  Service,
  Share,
  ShareHeal,
  ShareType,
  Snapshot,
  SnapshotExportLocation,
} from './types.ts';

/** The newest microversion this client knows (what manilaclient 4.1.1 sends). */
export const DEFAULT_SHARE_API_VERSION = '2.72';
export const MICROVERSION_HEADER = 'X-OpenStack-Manila-API-Version';

/** A dict as the Manila list filters want it: a Python literal, `{'k': 'v'}`. */
export function pythonDict(d: Record<string, string>): string {
  const q = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  return `{${Object.entries(d)
    .map(([k, v]) => `${q(k)}: ${q(v)}`)
    .join(', ')}}`;
}

/** The body of POST /v2/shares as the wire spells it (the service's input is CreateShareInput). */
export interface CreateShareBody {
  share_proto: string;
  size: number;
  name?: string | null;
  description?: string | null;
  share_type?: string | null;
  availability_zone?: string | null;
  metadata?: Record<string, string>;
  is_public?: boolean;
  snapshot_id?: string | null;
}

export interface UpdateShareBody {
  display_name?: string | null;
  display_description?: string | null;
  is_public?: boolean;
}

export interface CreateShareTypeBody {
  name: string;
  description?: string | null;
  extra_specs: Record<string, string | boolean>;
  'share_type_access:is_public'?: boolean;
}

export interface AllowAccessBody {
  access_type: string;
  access_to: string;
  access_level?: string;
  metadata?: Record<string, string>;
}

/** Pages at most this many times when following `*_links` (a loop guard, not a real limit). */
const MAX_PAGES = 1000;

export class ShareClient {
  constructor(
    readonly session: Session,
    readonly microversion: string = DEFAULT_SHARE_API_VERSION,
  ) {}

  private async call<T>(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown } = {},
  ): Promise<T> {
    const res = await this.session.request<T>('share', method, path, opts, {
      [MICROVERSION_HEADER]: this.microversion,
    });
    return res.body;
  }

  /** A list, following `<key>_links` `next` pages unless the caller set a limit. */
  private async listAll<T>(path: string, key: string, query: Query): Promise<T[]> {
    let body = await this.call<Record<string, unknown>>('GET', path, { query });
    const items = [...((body[key] as T[] | undefined) ?? [])];
    if (query.limit !== undefined && query.limit !== null) return items;
    for (let page = 0; page < MAX_PAGES; page++) {
      const links = body[`${key}_links`] as { rel: string; href: string }[] | undefined;
      const next = links?.find((l) => l.rel === 'next')?.href;
      if (!next) break;
      body = await this.call<Record<string, unknown>>('GET', next);
      const more = (body[key] as T[] | undefined) ?? [];
      if (!more.length) break;
      items.push(...more);
    }
    return items;
  }

  private action(shareId: string, body: Record<string, unknown>): Promise<unknown> {
    return this.call('POST', `/shares/${enc(shareId)}/action`, { body });
  }

  // ---- shares ----

  listShares(query: Query = {}): Promise<Share[]> {
    return this.listAll<Share>('/shares/detail', 'shares', query);
  }
  async getShare(id: string): Promise<Share> {
    return (await this.call<{ share: Share }>('GET', `/shares/${enc(id)}`)).share;
  }
  async createShare(input: CreateShareBody): Promise<Share> {
    return (await this.call<{ share: Share }>('POST', '/shares', { body: { share: input } })).share;
  }
  async updateShare(id: string, fields: UpdateShareBody): Promise<Share> {
    return (await this.call<{ share: Share }>('PUT', `/shares/${enc(id)}`, { body: { share: fields } }))
      .share;
  }
  async deleteShare(id: string): Promise<void> {
    await this.call('DELETE', `/shares/${enc(id)}`);
  }
  async forceDeleteShare(id: string): Promise<void> {
    await this.action(id, { force_delete: null });
  }
  async extendShare(id: string, newSize: number, force = false): Promise<void> {
    await this.action(id, { extend: force ? { new_size: newSize, force: true } : { new_size: newSize } });
  }
  async shrinkShare(id: string, newSize: number): Promise<void> {
    await this.action(id, { shrink: { new_size: newSize } });
  }
  async revertShare(id: string, snapshotId: string): Promise<void> {
    await this.action(id, { revert: { snapshot_id: snapshotId } });
  }
  async resetShareStatus(id: string, status: string): Promise<void> {
    await this.action(id, { reset_status: { status } });
  }
  async getShareMetadata(id: string): Promise<Record<string, string>> {
    return (await this.call<{ metadata: Record<string, string> }>('GET', `/shares/${enc(id)}/metadata`))
      .metadata;
  }
  async setShareMetadata(id: string, metadata: Record<string, string>): Promise<Record<string, string>> {
    return (
      await this.call<{ metadata: Record<string, string> }>('POST', `/shares/${enc(id)}/metadata`, {
        body: { metadata },
      })
    ).metadata;
  }
  async deleteShareMetadata(id: string, key: string): Promise<void> {
    await this.call('DELETE', `/shares/${enc(id)}/metadata/${enc(key)}`);
  }
  async listExportLocations(shareId: string): Promise<ExportLocation[]> {
    return (
      await this.call<{ export_locations: ExportLocation[] }>(
        'GET',
        `/shares/${enc(shareId)}/export_locations`,
      )
    ).export_locations;
  }
  async getExportLocation(shareId: string, id: string): Promise<ExportLocation> {
    return (
      await this.call<{ export_location: ExportLocation }>(
        'GET',
        `/shares/${enc(shareId)}/export_locations/${enc(id)}`,
      )
    ).export_location;
  }

  // ---- snapshots ----

  listSnapshots(query: Query = {}): Promise<Snapshot[]> {
    return this.listAll<Snapshot>('/snapshots/detail', 'snapshots', query);
  }
  async getSnapshot(id: string): Promise<Snapshot> {
    return (await this.call<{ snapshot: Snapshot }>('GET', `/snapshots/${enc(id)}`)).snapshot;
  }
  async createSnapshot(input: {
    share_id: string;
    force?: boolean;
    name?: string | null;
    description?: string | null;
  }): Promise<Snapshot> {
    return (
      await this.call<{ snapshot: Snapshot }>('POST', '/snapshots', {
        body: { snapshot: { force: false, ...input } },
      })
    ).snapshot;
  }
  async updateSnapshot(
    id: string,
    fields: { display_name?: string | null; display_description?: string | null },
  ): Promise<Snapshot> {
    return (
      await this.call<{ snapshot: Snapshot }>('PUT', `/snapshots/${enc(id)}`, { body: { snapshot: fields } })
    ).snapshot;
  }
  async deleteSnapshot(id: string): Promise<void> {
    await this.call('DELETE', `/snapshots/${enc(id)}`);
  }
  async forceDeleteSnapshot(id: string): Promise<void> {
    await this.call('POST', `/snapshots/${enc(id)}/action`, { body: { force_delete: null } });
  }
  async resetSnapshotStatus(id: string, status: string): Promise<void> {
    await this.call('POST', `/snapshots/${enc(id)}/action`, { body: { reset_status: { status } } });
  }
  async listSnapshotExportLocations(id: string): Promise<SnapshotExportLocation[]> {
    return (
      await this.call<{ share_snapshot_export_locations: SnapshotExportLocation[] }>(
        'GET',
        `/snapshots/${enc(id)}/export-locations`,
      )
    ).share_snapshot_export_locations;
  }

  // ---- share types ----

  async listShareTypes(query: Query = {}): Promise<ShareType[]> {
    return (await this.call<{ share_types: ShareType[] }>('GET', '/types', { query })).share_types;
  }
  async getShareType(id: string): Promise<ShareType> {
    return (await this.call<{ share_type: ShareType }>('GET', `/types/${enc(id)}`)).share_type;
  }
  async createShareType(input: CreateShareTypeBody): Promise<ShareType> {
    return (await this.call<{ share_type: ShareType }>('POST', '/types', { body: { share_type: input } }))
      .share_type;
  }
  async updateShareType(
    id: string,
    fields: { name?: string; description?: string | null; 'share_type_access:is_public'?: boolean },
  ): Promise<ShareType> {
    return (
      await this.call<{ share_type: ShareType }>('PUT', `/types/${enc(id)}`, { body: { share_type: fields } })
    ).share_type;
  }
  async deleteShareType(id: string): Promise<void> {
    await this.call('DELETE', `/types/${enc(id)}`);
  }
  async setExtraSpecs(id: string, specs: Record<string, string | boolean>): Promise<Record<string, string>> {
    return (
      await this.call<{ extra_specs: Record<string, string> }>('POST', `/types/${enc(id)}/extra_specs`, {
        body: { extra_specs: specs },
      })
    ).extra_specs;
  }
  async deleteExtraSpec(id: string, key: string): Promise<void> {
    await this.call('DELETE', `/types/${enc(id)}/extra_specs/${enc(key)}`);
  }
  async listShareTypeAccess(id: string): Promise<{ share_type_id: string; project_id: string }[]> {
    return (
      await this.call<{ share_type_access: { share_type_id: string; project_id: string }[] }>(
        'GET',
        `/types/${enc(id)}/share_type_access`,
      )
    ).share_type_access;
  }
  async addShareTypeAccess(id: string, project: string): Promise<void> {
    await this.call('POST', `/types/${enc(id)}/action`, { body: { addProjectAccess: { project } } });
  }
  async removeShareTypeAccess(id: string, project: string): Promise<void> {
    await this.call('POST', `/types/${enc(id)}/action`, { body: { removeProjectAccess: { project } } });
  }

  // ---- access rules (2.45+: /share-access-rules) ----

  async listAccessRules(shareId: string, metadata?: Record<string, string>): Promise<AccessRule[]> {
    const query: Query = { share_id: shareId };
    if (metadata && Object.keys(metadata).length) query.metadata = pythonDict(metadata);
    return (await this.call<{ access_list: AccessRule[] }>('GET', '/share-access-rules', { query }))
      .access_list;
  }
  async getAccessRule(id: string): Promise<AccessRule> {
    return (await this.call<{ access: AccessRule }>('GET', `/share-access-rules/${enc(id)}`)).access;
  }
  async allowAccess(shareId: string, input: AllowAccessBody): Promise<AccessRule> {
    return ((await this.action(shareId, { allow_access: input })) as { access: AccessRule }).access;
  }
  async denyAccess(shareId: string, accessId: string): Promise<void> {
    await this.action(shareId, { deny_access: { access_id: accessId } });
  }

  // ---- quotas, limits, zones, services, messages ----

  async getQuotaSet(
    project: string,
    opts: { detail?: boolean; defaults?: boolean; shareType?: string; userId?: string } = {},
  ): Promise<QuotaSet> {
    const suffix = opts.defaults ? '/defaults' : opts.detail ? '/detail' : '';
    return (
      await this.call<{ quota_set: QuotaSet }>('GET', `/quota-sets/${enc(project)}${suffix}`, {
        query: { share_type: opts.shareType, user_id: opts.userId },
      })
    ).quota_set;
  }
  async updateQuotaSet(
    project: string,
    values: Record<string, number>,
    opts: { shareType?: string; force?: boolean } = {},
  ): Promise<QuotaSet> {
    const quota_set: Record<string, unknown> = { tenant_id: project, ...values };
    if (opts.force) quota_set.force = true;
    return (
      await this.call<{ quota_set: QuotaSet }>('PUT', `/quota-sets/${enc(project)}`, {
        query: { share_type: opts.shareType },
        body: { quota_set },
      })
    ).quota_set;
  }
  async deleteQuotaSet(project: string, opts: { shareType?: string } = {}): Promise<void> {
    await this.call('DELETE', `/quota-sets/${enc(project)}`, { query: { share_type: opts.shareType } });
  }
  async getLimits(): Promise<Limits> {
    return (await this.call<{ limits: Limits }>('GET', '/limits')).limits;
  }
  async listAvailabilityZones(): Promise<AvailabilityZone[]> {
    return (await this.call<{ availability_zones: AvailabilityZone[] }>('GET', '/availability-zones'))
      .availability_zones;
  }
  // ---- bricks (abaca vendor API, admin) ----
  async listBricks(backend?: string): Promise<Brick[]> {
    const query: Query = backend === undefined ? {} : { backend };
    return (await this.call<{ bricks: Brick[] }>('GET', '/abaca/bricks', { query })).bricks;
  }
  async getBrick(id: string): Promise<Brick> {
    return (await this.call<{ brick: Brick }>('GET', `/abaca/bricks/${enc(id)}`)).brick;
  }
  async addBrick(address: string, backend?: string): Promise<Brick> {
    const brick = backend === undefined ? { address } : { address, backend };
    return (await this.call<{ brick: Brick }>('POST', '/abaca/bricks', { body: { brick } })).brick;
  }
  async replaceBrick(id: string, newAddress: string): Promise<BrickJob> {
    return (
      await this.call<{ brick_job: BrickJob }>('POST', `/abaca/bricks/${enc(id)}/action`, {
        body: { replace: { new_address: newAddress } },
      })
    ).brick_job;
  }
  async removeBrick(id: string): Promise<BrickJob> {
    return (
      await this.call<{ brick_job: BrickJob }>('POST', `/abaca/bricks/${enc(id)}/action`, {
        body: { remove: null },
      })
    ).brick_job;
  }

  async getShareHeal(id: string): Promise<ShareHeal> {
    return (await this.call<{ share_heal: ShareHeal }>('GET', `/shares/${enc(id)}/heal`)).share_heal;
  }
  async startShareHeal(id: string, full: boolean): Promise<void> {
    await this.action(id, { heal: { full } });
  }
  async resolveShareSplitBrain(
    id: string,
    input: { path: string; policy: string; source_brick?: string },
  ): Promise<{ path: string; policy: string; source_brick: string }> {
    return (
      (await this.action(id, { heal_resolve: input })) as {
        heal_resolve: { path: string; policy: string; source_brick: string };
      }
    ).heal_resolve;
  }
  async listPools(query: Query = {}, detail = false): Promise<Pool[]> {
    const path = detail ? '/scheduler-stats/pools/detail' : '/scheduler-stats/pools';
    return (await this.call<{ pools: Pool[] }>('GET', path, { query })).pools;
  }
  async listServices(query: Query = {}): Promise<Service[]> {
    return (await this.call<{ services: Service[] }>('GET', '/services', { query })).services;
  }
  async listMessages(query: Query = {}): Promise<Message[]> {
    return (await this.call<{ messages: Message[] }>('GET', '/messages', { query })).messages;
  }
  async getMessage(id: string): Promise<Message> {
    return (await this.call<{ message: Message }>('GET', `/messages/${enc(id)}`)).message;
  }
  async deleteMessage(id: string): Promise<void> {
    await this.call('DELETE', `/messages/${enc(id)}`);
  }

  /** The newest user message about a resource (why a share went to `error`), if any. */
  async latestUserMessage(resourceId: string): Promise<Message | null> {
    const rows = await this.listMessages({ resource_id: resourceId });
    if (!rows.length) return null;
    return [...rows].sort((a, b) =>
      a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0,
    )[0]!;
  }
}

/** Whether an error is the API's 404 (a resource that is gone or never was). */
export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404;
}

function enc(s: string): string {
  return encodeURIComponent(s);
}
