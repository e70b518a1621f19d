import { type Db, inTransaction } from '../db.ts';
import { Forbidden, InvalidInput, NotFound } from '../errors.ts';
import { newId, newSecret } from '../ids.ts';
import { type Auth, requireSelf, requireSelfOrAdmin } from '../policy.ts';
import {
  type ApplicationCredentialRow,
  applicationCredentialsRepo,
} from '../repos/application-credentials.ts';
import { roleAssignmentsRepo } from '../repos/role-assignments.ts';
import { type RoleRef, rolesRepo } from '../repos/roles.ts';
import { hashSecret } from './passwords.ts';
import type { RevocationList } from './revocations.ts';

export interface ApplicationCredentialInput {
  name: string;
  secret?: string | null | undefined;
  description?: string | null | undefined;
  expires_at?: Date | null | undefined;
  roles?: { id?: string | undefined; name?: string | undefined }[] | undefined;
  unrestricted?: boolean | undefined;
}

export interface ApplicationCredential extends ApplicationCredentialRow {
  roles: RoleRef[];
  /** Present only in the answer to create. */
  secret?: string;
}

export function createApplicationCredentialService({
  db,
  revocations,
}: {
  db: Db;
  revocations: RevocationList;
}) {
  async function withRoles(row: ApplicationCredentialRow): Promise<ApplicationCredential> {
    const roles = await Promise.all(row.role_ids.map((id) => rolesRepo.get(db, id)));
    return { ...row, roles: roles.filter((r) => r !== undefined).map((r) => ({ id: r.id, name: r.name })) };
  }
  async function mustGet(userId: string, id: string): Promise<ApplicationCredentialRow> {
    const row = await applicationCredentialsRepo.get(db, id);
    if (!row || row.user_id !== userId) throw new NotFound(`Could not find application credential: ${id}.`);
    return row;
  }
  return {
    async create(
      auth: Auth,
      userId: string,
      input: ApplicationCredentialInput,
    ): Promise<ApplicationCredential> {
      requireSelf(auth, userId, 'identity:create_application_credential');
      if (auth.applicationCredential?.restricted)
        throw new Forbidden(
          'A token from a restricted application credential cannot create application credentials; use an unrestricted one or a password.',
        );
      if (!auth.projectId)
        throw new InvalidInput(
          'An application credential is created from a project-scoped token; this token has no project.',
        );
      if (input.expires_at && input.expires_at.getTime() <= Date.now())
        throw new InvalidInput('expires_at must be in the future.');
      // Roles default to the token's; each asked-for role must be one the caller holds on the project.
      const held = await rolesRepo.expand(
        db,
        (
          await roleAssignmentsRepo.list(db, {
            type: 'UserProject',
            actor_id: userId,
            target_id: auth.projectId,
          })
        ).map((a) => a.role_id),
      );
      const tokenRoles = held.filter((r) => auth.roles.includes(r.name));
      const wanted = input.roles?.length ? input.roles : tokenRoles;
      const roleIds: string[] = [];
      for (const w of wanted) {
        const role = tokenRoles.find((r) => (w.id ? r.id === w.id : r.name === w.name));
        if (!role)
          throw new Forbidden(
            `You do not hold role ${w.id ?? w.name} on project ${auth.projectId}, so the credential cannot carry it.`,
          );
        if (!roleIds.includes(role.id)) roleIds.push(role.id);
      }
      const secret = input.secret || newSecret(32);
      const row = await applicationCredentialsRepo.insert(db, {
        id: newId(),
        name: input.name,
        user_id: userId,
        project_id: auth.projectId,
        secret_hash: await hashSecret(secret),
        description: input.description ?? '',
        expires_at: input.expires_at ?? null,
        unrestricted: input.unrestricted ?? false,
        role_ids: roleIds,
      });
      return { ...(await withRoles(row)), secret };
    },
    async list(
      auth: Auth,
      userId: string,
      filter: { name?: string | undefined },
    ): Promise<ApplicationCredential[]> {
      requireSelfOrAdmin(auth, userId, 'identity:list_application_credentials');
      const rows = await applicationCredentialsRepo.list(db, { user_id: userId, name: filter.name });
      return Promise.all(rows.map(withRoles));
    },
    async get(auth: Auth, userId: string, id: string): Promise<ApplicationCredential> {
      requireSelfOrAdmin(auth, userId, 'identity:get_application_credential');
      return withRoles(await mustGet(userId, id));
    },
    async remove(auth: Auth, userId: string, id: string): Promise<void> {
      requireSelfOrAdmin(auth, userId, 'identity:delete_application_credential');
      if (auth.applicationCredential?.restricted)
        throw new Forbidden(
          'A token from a restricted application credential cannot delete application credentials.',
        );
      const row = await mustGet(userId, id);
      await inTransaction(db, async (trx) => {
        await applicationCredentialsRepo.remove(trx, id);
        // Tokens do not record which credential a revocation should match, so revoke the user's
        // tokens on that project: broader than needed, never narrower.
        await revocations.revokeUser(trx, userId, row.project_id);
      });
    },
  };
}
