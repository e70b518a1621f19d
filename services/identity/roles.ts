import { type Db, inTransaction } from '../db.ts';
import { Forbidden, NotFound } from '../errors.ts';
import { newId } from '../ids.ts';
import { type Auth, Persona, requireAdmin } from '../policy.ts';
import { roleAssignmentsRepo } from '../repos/role-assignments.ts';
import { type RoleRow, rolesRepo } from '../repos/roles.ts';
import { stripUndefined } from './domains.ts';
import type { RevocationList } from './revocations.ts';

export interface RoleInput {
  name?: string | undefined;
  description?: string | undefined;
  options?: Record<string, unknown> | undefined;
  extra?: Record<string, unknown> | undefined;
}

const BUILT_IN: readonly string[] = Object.values(Persona);

export function createRoleService({ db, revocations }: { db: Db; revocations: RevocationList }) {
  async function mustGet(id: string): Promise<RoleRow> {
    const r = await rolesRepo.get(db, id);
    if (!r) throw new NotFound(`Could not find role: ${id}.`);
    return r;
  }
  return {
    async list(auth: Auth, filter: { name?: string | undefined }): Promise<RoleRow[]> {
      requireAdmin(auth, 'identity:list_roles');
      return rolesRepo.list(db, filter);
    },
    async get(auth: Auth, id: string): Promise<RoleRow> {
      requireAdmin(auth, 'identity:get_role');
      return mustGet(id);
    },
    async create(auth: Auth, input: RoleInput & { name: string }): Promise<RoleRow> {
      requireAdmin(auth, 'identity:create_role');
      return rolesRepo.insert(db, { id: newId(), ...stripUndefined(input), extra: input.extra ?? {} });
    },
    async update(auth: Auth, id: string, input: RoleInput): Promise<RoleRow> {
      requireAdmin(auth, 'identity:update_role');
      const current = await mustGet(id);
      if (input.name !== undefined && input.name !== current.name && BUILT_IN.includes(current.name))
        throw new Forbidden(`The built-in role '${current.name}' cannot be renamed.`);
      const patch = { ...input, extra: input.extra ? { ...current.extra, ...input.extra } : undefined };
      return (await rolesRepo.update(db, id, stripUndefined(patch))) as RoleRow;
    },
    async remove(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'identity:delete_role');
      const role = await mustGet(id);
      if (BUILT_IN.includes(role.name))
        throw new Forbidden(`The built-in role '${role.name}' cannot be deleted.`);
      await inTransaction(db, async (trx) => {
        // Tokens carry their roles: revoke those of everyone who held this one.
        for (const a of await roleAssignmentsRepo.list(trx, { role_id: id }))
          await revocations.revokeUser(trx, a.actor_id, a.target_id);
        await rolesRepo.remove(trx, id);
      });
    },
  };
}
