import { randomUUID } from 'node:crypto';
import { type Db, inTransaction } from './db.ts';
import { Conflict, Forbidden, InvalidInput, NotFound } from './errors.ts';
import { normalizeSpecs, REQUIRED_SPECS } from './extra-specs.ts';
import { DEFAULT_DOMAIN_ID } from './identity/domains.ts';
import { isUuid } from './ids.ts';
import { type Auth, requireAdmin } from './policy.ts';
import type { Repos } from './repos/index.ts';
import { type ShareType, shareTypesRepo } from './repos/share-types.ts';

/** The type the OpenStack clients require to exist (both look it up by this name). */
export const DEFAULT_SHARE_TYPE = 'default';

export interface ShareTypeInput {
  name?: string | undefined;
  description?: string | null | undefined;
  isPublic?: boolean | undefined;
  extraSpecs?: Record<string, unknown> | undefined;
}

/** Creates the `default` share type if it is missing (safe on every start, on every server). */
export async function ensureDefaultShareType(db: Db): Promise<ShareType> {
  return inTransaction(db, async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [0x73747970]);
    const existing = await shareTypesRepo.getByName(trx, DEFAULT_SHARE_TYPE);
    if (existing) return existing;
    const row = await shareTypesRepo.insert(trx, {
      id: randomUUID(),
      name: DEFAULT_SHARE_TYPE,
      description: 'Default share type',
      is_public: true,
    });
    await shareTypesRepo.setSpecs(trx, row.id, {
      driver_handles_share_servers: 'False',
      snapshot_support: 'True',
      create_share_from_snapshot_support: 'True',
      revert_to_snapshot_support: 'True',
      mount_snapshot_support: 'False',
    });
    return justCreated(await shareTypesRepo.get(trx, row.id), row.id);
  });
}

/** A type read back inside the transaction that created it: there, or something is badly wrong. */
function justCreated(type: ShareType | undefined, id: string): ShareType {
  if (!type) throw new Error(`Share type ${id} is missing from the transaction that created it.`);
  return type;
}

export function createShareTypeService({
  db,
  repos,
}: {
  db: Db;
  repos: Pick<Repos, 'shareTypes' | 'projects'>;
}) {
  const notFound = (id: string) => new NotFound(`Share type ${id} could not be found.`);

  /** A type the caller may see: admins see all; others public ones and those shared with them. */
  async function visible(auth: Auth, id: string): Promise<ShareType> {
    const type = isUuid(id) ? await repos.shareTypes.get(db, id) : undefined;
    if (!type) throw notFound(id);
    if (
      !auth.isAdmin &&
      !type.is_public &&
      !(auth.projectId && (await repos.shareTypes.hasAccess(db, id, auth.projectId)))
    )
      throw notFound(id);
    return type;
  }

  /** `openstack share type access create` passes the project as typed: an id or a name. */
  async function resolveProject(ref: string): Promise<string | undefined> {
    const project =
      (await repos.projects.get(db, ref)) ?? (await repos.projects.getByName(db, DEFAULT_DOMAIN_ID, ref));
    return project?.id;
  }

  async function mustGet(id: string): Promise<ShareType> {
    const type = isUuid(id) ? await repos.shareTypes.get(db, id) : undefined;
    if (!type) throw notFound(id);
    return type;
  }

  return {
    visible,

    /** A type the caller may see, by id or by name (what clients send in a share_type filter). */
    async visibleByRef(auth: Auth, ref: string): Promise<ShareType> {
      if (isUuid(ref)) return visible(auth, ref);
      const type = await repos.shareTypes.getByName(db, ref);
      if (!type) throw notFound(ref);
      return visible(auth, type.id);
    },

    /**
     * Non-admins always get public + shared types; admins choose with isPublic: by default (true)
     * the public types and those shared with their own project, as Manila's is_public=True query;
     * false every private type; 'all' every type.
     */
    async list(auth: Auth, isPublic: boolean | 'all' | undefined): Promise<ShareType[]> {
      if (!auth.isAdmin || (isPublic ?? true) === true)
        return repos.shareTypes.list(db, { projectId: auth.projectId ?? '' });
      return repos.shareTypes.list(db, { projectId: null, isPublic: isPublic === 'all' ? undefined : false });
    },

    async getDefault(auth: Auth): Promise<ShareType> {
      const type = await repos.shareTypes.getByName(db, DEFAULT_SHARE_TYPE);
      if (!type) throw new NotFound('Default share type not found.');
      return visible(auth, type.id);
    },

    async create(auth: Auth, input: ShareTypeInput & { name: string }): Promise<ShareType> {
      requireAdmin(auth, 'share_type:create');
      const specs = normalizeSpecs(input.extraSpecs ?? {});
      for (const key of REQUIRED_SPECS)
        if (specs[key] === undefined)
          throw new InvalidInput(`Required extra specification ${key} is missing.`);
      return inTransaction(db, async (trx) => {
        const row = await repos.shareTypes.insert(trx, {
          id: randomUUID(),
          name: input.name,
          description: input.description ?? null,
          is_public: input.isPublic ?? true,
        });
        await repos.shareTypes.setSpecs(trx, row.id, specs);
        return justCreated(await repos.shareTypes.get(trx, row.id), row.id);
      });
    },

    async update(auth: Auth, id: string, input: ShareTypeInput): Promise<ShareType> {
      requireAdmin(auth, 'share_type:update');
      const type = await mustGet(id);
      if (input.name === undefined && input.description === undefined && input.isPublic === undefined)
        throw new InvalidInput(
          'Nothing to update: give a name, a description or share_type_access:is_public.',
        );
      if (input.name !== undefined && type.name === DEFAULT_SHARE_TYPE && input.name !== type.name)
        throw new Forbidden(
          `The '${DEFAULT_SHARE_TYPE}' share type cannot be renamed: the clients look it up by name.`,
        );
      await repos.shareTypes.update(db, id, {
        ...(input.name !== undefined ? { name: input.name } : {}),
        // An empty description unsets it (Manila shows it as null).
        ...(input.description !== undefined ? { description: input.description || null } : {}),
        ...(input.isPublic !== undefined ? { is_public: input.isPublic } : {}),
        updated_at: new Date(),
      });
      return mustGet(id);
    },

    async delete(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'share_type:delete');
      const type = await mustGet(id);
      if (type.name === DEFAULT_SHARE_TYPE)
        throw new Forbidden(
          `The '${DEFAULT_SHARE_TYPE}' share type cannot be deleted: the clients require it.`,
        );
      // Manila's ShareTypeInUse, a 400 (for shares of the type and for share group types naming it).
      const user = await repos.shareTypes.inUse(db, id);
      if (user)
        throw new InvalidInput(
          `Share Type ${id} deletion is not allowed with ${user} present with the type.`,
        );
      await repos.shareTypes.remove(db, id);
    },

    async listSpecs(auth: Auth, id: string): Promise<Record<string, string>> {
      requireAdmin(auth, 'share_type:index_extra_specs');
      return (await mustGet(id)).extra_specs;
    },

    async getSpec(auth: Auth, id: string, key: string): Promise<string> {
      requireAdmin(auth, 'share_type:show_extra_spec');
      const value = (await mustGet(id)).extra_specs[key];
      if (value === undefined) throw new NotFound(`Share type ${id} has no extra spec with key ${key}.`);
      return value;
    },

    /** Sets (adds or overwrites) the given specs; returns what was set, normalised. */
    async setSpecs(auth: Auth, id: string, specs: Record<string, unknown>): Promise<Record<string, string>> {
      requireAdmin(auth, 'share_type:create_extra_spec');
      await mustGet(id);
      const normalized = normalizeSpecs(specs);
      if (Object.keys(normalized).length === 0) throw new InvalidInput('extra_specs must not be empty.');
      await repos.shareTypes.setSpecs(db, id, normalized);
      return normalized;
    },

    /** `required` names specs the caller's API version also counts as required (Manila < 2.24). */
    async deleteSpec(
      auth: Auth,
      id: string,
      key: string,
      { required = [] }: { required?: readonly string[] } = {},
    ): Promise<void> {
      requireAdmin(auth, 'share_type:delete_extra_spec');
      await mustGet(id);
      if ((REQUIRED_SPECS as readonly string[]).includes(key) || required.includes(key))
        throw new Forbidden(`Extra spec ${key} is required and cannot be deleted.`);
      if (!(await repos.shareTypes.deleteSpec(db, id, key)))
        throw new NotFound(`Share type ${id} has no extra spec with key ${key}.`);
    },

    async listAccess(auth: Auth, id: string): Promise<string[]> {
      requireAdmin(auth, 'share_type:list_project_access');
      const type = await mustGet(id);
      if (type.is_public) throw new NotFound('Access list not available for public share types.');
      return repos.shareTypes.listAccess(db, id);
    },

    async addAccess(auth: Auth, id: string, projectRef: string): Promise<void> {
      requireAdmin(auth, 'share_type:add_project_access');
      const type = await mustGet(id);
      if (type.is_public)
        throw new Conflict(`Share type ${id} is public: access applies only to private share types.`);
      const projectId = await resolveProject(projectRef);
      if (!projectId)
        throw new InvalidInput(
          `Project ${projectRef} does not exist (give its id, or its name in the default domain).`,
        );
      if (await repos.shareTypes.hasAccess(db, id, projectId))
        throw new Conflict(`Share type ${id} is already accessible to project ${projectId}.`);
      await repos.shareTypes.addAccess(db, id, projectId);
    },

    async removeAccess(auth: Auth, id: string, projectRef: string): Promise<void> {
      requireAdmin(auth, 'share_type:remove_project_access');
      const type = await mustGet(id);
      if (type.is_public)
        throw new Conflict(`Share type ${id} is public: access applies only to private share types.`);
      // An entry for a project that has since been deleted can still be removed by its id.
      const projectId = (await resolveProject(projectRef)) ?? projectRef;
      if (!(await repos.shareTypes.removeAccess(db, id, projectId)))
        throw new NotFound(`Share type ${id} has no access entry for project ${projectRef}.`);
    },
  };
}

export type ShareTypeService = ReturnType<typeof createShareTypeService>;
