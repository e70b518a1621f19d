import { type Db, inTransaction } from './db.ts';
import { Forbidden, InvalidInput, NotFound } from './errors.ts';
import { isUuid } from './ids.ts';
import { type Auth, requireAdmin } from './policy.ts';
import {
  QUOTA_DEFAULTS,
  type QuotaResource,
  type QuotaService,
  SHARE_TYPE_QUOTA_RESOURCES,
} from './quotas.ts';
import type { Repos } from './repos/index.ts';

export interface QuotaDetail {
  limit: number;
  in_use: number;
  reserved: number;
}

/** The quota-sets API (show, update, reset, defaults) over the quota service's tables. */
export function createQuotaSetService(deps: {
  db: Db;
  repos: Pick<Repos, 'projects' | 'quotas' | 'shareTypes'>;
  quotas: QuotaService;
}) {
  const { db, repos, quotas } = deps;
  /** Readers see their own project's quotas; admins any project's. Others are refused (403, as Manila). */
  async function target(auth: Auth, projectId: string, shareTypeRef: string | undefined) {
    if (!auth.isAdmin && projectId !== auth.projectId)
      throw new Forbidden(`Policy does not allow quota_set:show to be performed on project ${projectId}.`);
    if (!auth.isAdmin && !auth.roles.includes('reader'))
      throw new Forbidden('Policy does not allow quota_set:show to be performed.');
    let shareTypeId = '';
    if (shareTypeRef !== undefined) {
      const type = isUuid(shareTypeRef)
        ? await repos.shareTypes.get(db, shareTypeRef)
        : await repos.shareTypes.getByName(db, shareTypeRef);
      if (!type) throw new NotFound(`Share type ${shareTypeRef} could not be found.`);
      shareTypeId = type.id;
    }
    return shareTypeId;
  }

  function resourcesFor(shareTypeId: string): readonly QuotaResource[] {
    return shareTypeId === '' ? (Object.keys(QUOTA_DEFAULTS) as QuotaResource[]) : SHARE_TYPE_QUOTA_RESOURCES;
  }

  async function limits(projectId: string, shareTypeId: string): Promise<Record<string, number>> {
    const own = await quotas.effectiveLimits(db, projectId, shareTypeId);
    // A share type without its own limit is bounded by the project's, and shows it (as Manila's
    // share-type quotas default to the project's values).
    const project = shareTypeId === '' ? own : await quotas.effectiveLimits(db, projectId, '');
    return Object.fromEntries(resourcesFor(shareTypeId).map((r) => [r, own[r] ?? project[r] ?? -1]));
  }

  return {
    async show(auth: Auth, projectId: string, shareTypeRef?: string): Promise<Record<string, number>> {
      return limits(projectId, await target(auth, projectId, shareTypeRef));
    },

    async detail(auth: Auth, projectId: string, shareTypeRef?: string): Promise<Record<string, QuotaDetail>> {
      const shareTypeId = await target(auth, projectId, shareTypeRef);
      const l = await limits(projectId, shareTypeId);
      const usages = await repos.quotas.usages(db, projectId, shareTypeId);
      return Object.fromEntries(
        Object.entries(l).map(([r, limit]) => {
          const u = usages.find((x) => x.resource === r);
          return [r, { limit, in_use: u?.in_use ?? 0, reserved: u?.reserved ?? 0 }];
        }),
      );
    },

    defaults(): Record<string, number> {
      return { ...QUOTA_DEFAULTS };
    },

    async update(
      auth: Auth,
      projectId: string,
      values: Record<string, number>,
      opts: { shareTypeRef?: string | undefined; force: boolean },
    ): Promise<Record<string, number>> {
      requireAdmin(auth, 'quota_set:update');
      if (!(await repos.projects.get(db, projectId)))
        throw new NotFound(`Project ${projectId} could not be found.`);
      const shareTypeId = await target(auth, projectId, opts.shareTypeRef);
      const allowed = resourcesFor(shareTypeId);
      const unknown = Object.keys(values).filter((k) => !allowed.includes(k as QuotaResource));
      if (unknown.length)
        throw new InvalidInput(
          `Unknown or not allowed quota resource(s) ${unknown.join(', ')}; allowed: ${allowed.join(', ')}.`,
        );
      if (Object.keys(values).length === 0) throw new InvalidInput('Give at least one quota to set.');
      await inTransaction(db, async (trx) => {
        const usages = await repos.quotas.usages(trx, projectId, shareTypeId);
        for (const [resource, limit] of Object.entries(values)) {
          const u = usages.find((x) => x.resource === resource);
          const used = (u?.in_use ?? 0) + (u?.reserved ?? 0);
          if (!opts.force && limit >= 0 && limit < used)
            throw new InvalidInput(
              `Quota ${resource} cannot be set to ${limit}: ${used} already in use or reserved (use force to override).`,
            );
          await repos.quotas.setLimit(
            trx,
            { project_id: projectId, share_type_id: shareTypeId, resource },
            limit,
          );
        }
      });
      return limits(projectId, shareTypeId);
    },

    /** Back to the defaults (project) or to no per-type limits (share type). */
    async reset(auth: Auth, projectId: string, shareTypeRef?: string): Promise<void> {
      requireAdmin(auth, 'quota_set:delete');
      const shareTypeId = await target(auth, projectId, shareTypeRef);
      await repos.quotas.deleteLimits(db, projectId, shareTypeId);
    },
  };
}

export type QuotaSetService = ReturnType<typeof createQuotaSetService>;
