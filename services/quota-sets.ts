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

/** Whose quota set: a project, or one share type's or one user's part of it (never both). */
export interface QuotaTarget {
  shareTypeRef?: string | undefined;
  userId?: string | undefined;
}

/**
 * The quota-sets API (show, update, reset, defaults) over the quota service's tables. A user's
 * quota set shows the user's own limits and, where they set none, the project's (as Manila's
 * get_user_quotas); their usage is what they own.
 */
export function createQuotaSetService(deps: {
  db: Db;
  repos: Pick<Repos, 'projects' | 'quotas' | 'shareTypes'>;
  quotas: QuotaService;
}) {
  const { db, repos, quotas } = deps;
  /** Readers see their own project's quotas; admins any project's. Others are refused (403, as Manila). */
  async function target(auth: Auth, projectId: string, { shareTypeRef, userId }: QuotaTarget) {
    if (!auth.isAdmin && projectId !== auth.projectId)
      throw new Forbidden(`Policy does not allow quota_set:show to be performed on project ${projectId}.`);
    if (!auth.isAdmin && !auth.roles.includes('reader'))
      throw new Forbidden('Policy does not allow quota_set:show to be performed.');
    if (shareTypeRef !== undefined && userId !== undefined)
      throw new InvalidInput(
        'A quota set is a share type’s or a user’s: give share_type or user_id, not both.',
      );
    let shareTypeId = '';
    if (shareTypeRef !== undefined) {
      const type = isUuid(shareTypeRef)
        ? await repos.shareTypes.get(db, shareTypeRef)
        : await repos.shareTypes.getByName(db, shareTypeRef);
      if (!type) throw new NotFound(`Share type ${shareTypeRef} could not be found.`);
      shareTypeId = type.id;
    }
    return { shareTypeId, userId: userId ?? '' };
  }

  function resourcesFor(shareTypeId: string): readonly QuotaResource[] {
    return shareTypeId === '' ? (Object.keys(QUOTA_DEFAULTS) as QuotaResource[]) : SHARE_TYPE_QUOTA_RESOURCES;
  }

  async function limits(
    projectId: string,
    { shareTypeId, userId }: { shareTypeId: string; userId: string },
  ): Promise<Record<string, number>> {
    const own =
      userId === ''
        ? await quotas.effectiveLimits(db, projectId, shareTypeId)
        : await repos.quotas.limits(db, projectId, '', userId);
    // A share type or user without its own limit is bounded by the project's, and shows it (as
    // Manila's share-type and user quotas default to the project's values).
    const project =
      shareTypeId === '' && userId === '' ? own : await quotas.effectiveLimits(db, projectId, '');
    return Object.fromEntries(resourcesFor(shareTypeId).map((r) => [r, own[r] ?? project[r] ?? -1]));
  }

  return {
    async show(auth: Auth, projectId: string, of: QuotaTarget = {}): Promise<Record<string, number>> {
      return limits(projectId, await target(auth, projectId, of));
    },

    async detail(auth: Auth, projectId: string, of: QuotaTarget = {}): Promise<Record<string, QuotaDetail>> {
      const scope = await target(auth, projectId, of);
      const l = await limits(projectId, scope);
      const usages = await repos.quotas.usages(db, projectId, scope.shareTypeId, scope.userId);
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
      opts: QuotaTarget & { force: boolean },
    ): Promise<Record<string, number>> {
      requireAdmin(auth, 'quota_set:update');
      if (!(await repos.projects.get(db, projectId)))
        throw new NotFound(`Project ${projectId} could not be found.`);
      const scope = await target(auth, projectId, opts);
      const { shareTypeId, userId } = scope;
      const allowed = resourcesFor(shareTypeId);
      const unknown = Object.keys(values).filter((k) => !allowed.includes(k as QuotaResource));
      if (unknown.length)
        throw new InvalidInput(
          `Unknown or not allowed quota resource(s) ${unknown.join(', ')}; allowed: ${allowed.join(', ')}.`,
        );
      if (Object.keys(values).length === 0) throw new InvalidInput('Give at least one quota to set.');
      // A user's or a share type's limit may not exceed the project's (Manila's settable
      // maximum) unless forced.
      const part = userId !== '' ? `user ${userId}` : shareTypeId !== '' ? `share type ${shareTypeId}` : '';
      const project = part === '' ? {} : await quotas.effectiveLimits(db, projectId, '');
      await inTransaction(db, async (trx) => {
        const usages = await repos.quotas.usages(trx, projectId, shareTypeId, userId);
        for (const [resource, limit] of Object.entries(values)) {
          const u = usages.find((x) => x.resource === resource);
          const used = (u?.in_use ?? 0) + (u?.reserved ?? 0);
          if (!opts.force && limit >= 0 && limit < used)
            throw new InvalidInput(
              `Quota ${resource} cannot be set to ${limit}: ${used} already in use or reserved (use force to override).`,
            );
          const max = project[resource] ?? -1;
          if (!opts.force && max >= 0 && (limit < 0 || limit > max))
            throw new InvalidInput(
              `Quota ${resource} of ${part} cannot be set to ${limit}: the project's is ${max} (use force to override).`,
            );
          await repos.quotas.setLimit(
            trx,
            { project_id: projectId, user_id: userId, share_type_id: shareTypeId, resource },
            limit,
          );
        }
      });
      return limits(projectId, scope);
    },

    /** Back to the defaults (project) or to no limits of its own (share type, user). */
    async reset(auth: Auth, projectId: string, of: QuotaTarget = {}): Promise<void> {
      requireAdmin(auth, 'quota_set:delete');
      const { shareTypeId, userId } = await target(auth, projectId, of);
      await repos.quotas.deleteLimits(db, projectId, shareTypeId, userId);
    },
  };
}

export type QuotaSetService = ReturnType<typeof createQuotaSetService>;
