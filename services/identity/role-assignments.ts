import { type Db, inTransaction } from '../db.ts';
import { NotFound } from '../errors.ts';
import { type Auth, requireAdmin } from '../policy.ts';
import { domainsRepo } from '../repos/domains.ts';
import { projectsRepo } from '../repos/projects.ts';
import {
  type AssignmentType,
  type RoleAssignmentRow,
  roleAssignmentsRepo,
} from '../repos/role-assignments.ts';
import { type RoleRef, type RoleRow, rolesRepo } from '../repos/roles.ts';
import { usersRepo } from '../repos/users.ts';
import type { RevocationList } from './revocations.ts';

export interface AssignmentQuery {
  userId?: string | undefined;
  projectId?: string | undefined;
  roleId?: string | undefined;
  /** Expand implied roles, as Keystone's ?effective does. */
  effective?: boolean | undefined;
}

export interface NamedRef {
  name: string;
  domain: { id: string; name: string };
}

export interface Assignment {
  type: AssignmentType;
  userId: string;
  targetId: string;
  role: RoleRef;
  /** For an implied role in an effective list: the granted role that implies it. */
  priorRoleId: string | null;
}

export function createRoleAssignmentService({ db, revocations }: { db: Db; revocations: RevocationList }) {
  async function mustExist(projectId: string, userId: string): Promise<void> {
    if (!(await projectsRepo.get(db, projectId))) throw new NotFound(`Could not find project: ${projectId}.`);
    if (!(await usersRepo.get(db, userId))) throw new NotFound(`Could not find user: ${userId}.`);
  }
  async function resolve(projectId: string, userId: string, roleId: string): Promise<RoleAssignmentRow> {
    await mustExist(projectId, userId);
    if (!(await rolesRepo.get(db, roleId))) throw new NotFound(`Could not find role: ${roleId}.`);
    return { type: 'UserProject', actor_id: userId, target_id: projectId, role_id: roleId };
  }
  return {
    /** PUT /v3/projects/{p}/users/{u}/roles/{r} (idempotent) */
    async grant(auth: Auth, projectId: string, userId: string, roleId: string): Promise<void> {
      requireAdmin(auth, 'identity:create_grant');
      await roleAssignmentsRepo.add(db, await resolve(projectId, userId, roleId));
    },
    async revoke(auth: Auth, projectId: string, userId: string, roleId: string): Promise<void> {
      requireAdmin(auth, 'identity:revoke_grant');
      const row = await resolve(projectId, userId, roleId);
      await inTransaction(db, async (trx) => {
        if (!(await roleAssignmentsRepo.remove(trx, row)))
          throw new NotFound(`User ${userId} does not hold role ${roleId} on project ${projectId}.`);
        await revocations.revokeUser(trx, userId, projectId);
      });
    },
    async check(auth: Auth, projectId: string, userId: string, roleId: string): Promise<void> {
      requireAdmin(auth, 'identity:check_grant');
      if (!(await roleAssignmentsRepo.exists(db, await resolve(projectId, userId, roleId))))
        throw new NotFound(`User ${userId} does not hold role ${roleId} on project ${projectId}.`);
    },
    /** GET /v3/projects/{p}/users/{u}/roles */
    async listGrants(auth: Auth, projectId: string, userId: string): Promise<RoleRow[]> {
      requireAdmin(auth, 'identity:list_grants');
      await mustExist(projectId, userId);
      const rows = await roleAssignmentsRepo.list(db, {
        type: 'UserProject',
        actor_id: userId,
        target_id: projectId,
      });
      const roles = await Promise.all(rows.map((r) => rolesRepo.get(db, r.role_id)));
      return roles.filter((r): r is RoleRow => r !== undefined);
    },
    /** GET /v3/role_assignments: admins see all; others only their own. */
    async list(auth: Auth, q: AssignmentQuery): Promise<Assignment[]> {
      if (q.userId !== auth.userId) requireAdmin(auth, 'identity:list_role_assignments');
      const rows = await roleAssignmentsRepo.list(db, {
        type: q.projectId ? 'UserProject' : undefined,
        actor_id: q.userId,
        target_id: q.projectId,
      });
      const byId = new Map((await rolesRepo.list(db)).map((r) => [r.id, r]));
      const out: Assignment[] = [];
      const seen = new Set<string>();
      const add = (row: RoleAssignmentRow, role: RoleRef, priorRoleId: string | null) => {
        const key = `${row.actor_id}/${row.target_id}/${role.id}`;
        if ((q.roleId && role.id !== q.roleId) || seen.has(key)) return;
        seen.add(key);
        out.push({ type: row.type, userId: row.actor_id, targetId: row.target_id, role, priorRoleId });
      };
      // Direct grants first, so a role held both directly and by implication shows as direct.
      for (const row of rows) {
        const r = byId.get(row.role_id);
        if (r) add(row, { id: r.id, name: r.name }, null);
      }
      if (q.effective) {
        for (const row of rows) {
          for (const implied of await rolesRepo.expand(db, [row.role_id]))
            if (implied.id !== row.role_id) add(row, implied, row.role_id);
        }
      }
      return out;
    },
    /** Names (and domains) of the users and projects in a list of assignments (?include_names). */
    async names(rows: Assignment[]): Promise<Map<string, NamedRef>> {
      const names = new Map<string, NamedRef>();
      const domains = new Map((await domainsRepo.list(db)).map((d) => [d.id, { id: d.id, name: d.name }]));
      const named = (row: { id: string; name: string; domain_id: string } | undefined) =>
        row && {
          name: row.name,
          domain: domains.get(row.domain_id) ?? { id: row.domain_id, name: row.domain_id },
        };
      for (const a of rows) {
        if (!names.has(a.userId)) {
          const u = named(await usersRepo.get(db, a.userId));
          if (u) names.set(a.userId, u);
        }
        if (!names.has(a.targetId)) {
          const p = named(await projectsRepo.get(db, a.targetId));
          if (p) names.set(a.targetId, p);
        }
      }
      return names;
    },
  };
}
