import { randomUUID } from 'node:crypto';
import { type Db, inTransaction } from './db.ts';
import { Conflict, InvalidInput, NotFound } from './errors.ts';
import { isUuid } from './ids.ts';
import { type Auth, requireAdmin, requireReader } from './policy.ts';
import type { Repos } from './repos/index.ts';
import type { ShareGroupType } from './repos/share-group-types.ts';

export interface ShareGroupTypeInput {
  name: string;
  /** Share types by id or name (Manila resolves either). */
  shareTypes: string[];
  groupSpecs: Record<string, string>;
  isPublic: boolean;
}

/** Keystone project ids are UUIDs, with or without dashes; Manila checks access entries are. */
const PROJECT_ID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * Share group types (Manila's share_group_types API, 2.31+): what a share group may hold (share
 * types) and group specs; private ones are visible to the projects given access. Admins manage
 * them; everyone may list and show those they can see. abaca has no default share group type
 * (Manila's default_share_group_type unset), so `default` is a 404 as on such a Manila.
 */
export function createShareGroupTypeService({
  db,
  repos,
}: {
  db: Db;
  repos: Pick<Repos, 'shareGroupTypes' | 'shareTypes' | 'shareGroups'>;
}) {
  const notFound = (id: string) => new NotFound(`Share group type ${id} could not be found.`);

  async function mustGet(id: string): Promise<ShareGroupType> {
    const type = isUuid(id) ? await repos.shareGroupTypes.get(db, id) : undefined;
    if (!type) throw notFound(id);
    return type;
  }

  /** A type the caller may see: admins every one; others the public ones and those shared with them. */
  async function visible(auth: Auth, id: string): Promise<ShareGroupType> {
    const type = await mustGet(id);
    if (
      !auth.isAdmin &&
      !type.is_public &&
      !(auth.projectId && (await repos.shareGroupTypes.hasAccess(db, id, auth.projectId)))
    )
      throw notFound(id);
    return type;
  }

  function projectId(ref: string): string {
    if (!PROJECT_ID.test(ref)) throw new InvalidInput(`Project value (${ref}) must be in uuid format.`);
    return ref;
  }

  /** A private type, for access changes: a public one is a 409, as in Manila. */
  async function mustBePrivate(id: string): Promise<void> {
    if ((await mustGet(id)).is_public)
      throw new Conflict('Type access modification is not applicable to public share group type.');
  }

  return {
    visible,

    /**
     * As share types: non-admins get the public types and those shared with them; admins choose with
     * isPublic — by default (true) the same as anyone, false the private ones, 'all' every type.
     * `groupSpecs` keeps the types having each of these specs (2.66).
     */
    async list(
      auth: Auth,
      isPublic: boolean | 'all' | undefined,
      groupSpecs: Record<string, string> = {},
    ): Promise<ShareGroupType[]> {
      requireReader(auth, 'share_group_type:index');
      const rows =
        !auth.isAdmin || (isPublic ?? true) === true
          ? await repos.shareGroupTypes.list(db, { projectId: auth.projectId ?? '' })
          : await repos.shareGroupTypes.list(db, {
              projectId: null,
              isPublic: isPublic === 'all' ? undefined : false,
            });
      return rows.filter((t) => Object.entries(groupSpecs).every(([k, v]) => t.group_specs[k] === v));
    },

    async get(auth: Auth, id: string): Promise<ShareGroupType> {
      requireReader(auth, 'share_group_type:show');
      return visible(auth, id);
    },

    async getDefault(auth: Auth): Promise<never> {
      requireReader(auth, 'share_group_type:default');
      throw new NotFound('Default share group type not found.');
    },

    async create(auth: Auth, input: ShareGroupTypeInput): Promise<ShareGroupType> {
      requireAdmin(auth, 'share_group_type:create');
      return inTransaction(db, async (trx) => {
        const ids: string[] = [];
        for (const ref of input.shareTypes) {
          const type = isUuid(ref)
            ? await repos.shareTypes.get(trx, ref)
            : await repos.shareTypes.getByName(trx, ref);
          // Manila's ShareTypeDoesNotExist, a 404.
          if (!type) throw new NotFound(`Share type ${ref} does not exist.`);
          ids.push(type.id);
        }
        const id = randomUUID();
        await repos.shareGroupTypes.insert(trx, { id, name: input.name, is_public: input.isPublic });
        await repos.shareGroupTypes.addShareTypes(trx, id, ids);
        await repos.shareGroupTypes.setSpecs(trx, id, input.groupSpecs);
        const created = await repos.shareGroupTypes.get(trx, id);
        if (!created)
          throw new Error(`Share group type ${id} is missing from the transaction that created it.`);
        return created;
      });
    },

    /** A type some share group has is in use: Manila's ShareGroupTypeInUse, a 400. */
    async delete(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'share_group_type:delete');
      await mustGet(id);
      const groups = await repos.shareGroups.countOfType(db, id);
      if (groups > 0)
        throw new InvalidInput(
          `Share group type ${id} is in use by ${groups} share group(s); it cannot be deleted.`,
        );
      if (!(await repos.shareGroupTypes.remove(db, id))) throw notFound(id);
    },

    async listAccess(auth: Auth, id: string): Promise<string[]> {
      requireAdmin(auth, 'share_group_type:list_project_access');
      if ((await mustGet(id)).is_public)
        throw new NotFound('Access list not available for public share group types.');
      return repos.shareGroupTypes.listAccess(db, id);
    },

    async addAccess(auth: Auth, id: string, project: string): Promise<void> {
      requireAdmin(auth, 'share_group_type:add_project_access');
      const pid = projectId(project);
      await mustBePrivate(id);
      if (await repos.shareGroupTypes.hasAccess(db, id, pid))
        throw new Conflict(`Share group type ${id} is already accessible to project ${pid}.`);
      await repos.shareGroupTypes.addAccess(db, id, pid);
    },

    async removeAccess(auth: Auth, id: string, project: string): Promise<void> {
      requireAdmin(auth, 'share_group_type:remove_project_access');
      const pid = projectId(project);
      await mustBePrivate(id);
      if (!(await repos.shareGroupTypes.removeAccess(db, id, pid)))
        throw new NotFound(`Share group type ${id} has no access entry for project ${pid}.`);
    },

    async listSpecs(auth: Auth, id: string): Promise<Record<string, string>> {
      requireAdmin(auth, 'share_group_types_spec:index');
      return (await mustGet(id)).group_specs;
    },

    async getSpec(auth: Auth, id: string, key: string): Promise<string> {
      requireAdmin(auth, 'share_group_types_spec:show');
      const value = (await mustGet(id)).group_specs[key];
      if (value === undefined)
        throw new NotFound(`Share group type ${id} has no group spec with key ${key}.`);
      return value;
    },

    /** Adds or overwrites the given specs. */
    async setSpecs(auth: Auth, id: string, specs: Record<string, string>): Promise<Record<string, string>> {
      requireAdmin(auth, 'share_group_types_spec:create');
      await mustGet(id);
      if (Object.keys(specs).length === 0) throw new InvalidInput('group_specs must not be empty.');
      await repos.shareGroupTypes.setSpecs(db, id, specs);
      return specs;
    },

    async deleteSpec(auth: Auth, id: string, key: string): Promise<void> {
      requireAdmin(auth, 'share_group_types_spec:delete');
      await mustGet(id);
      if (!(await repos.shareGroupTypes.deleteSpec(db, id, key)))
        throw new NotFound(`Share group type ${id} has no group spec with key ${key}.`);
    },
  };
}

export type ShareGroupTypeService = ReturnType<typeof createShareGroupTypeService>;
