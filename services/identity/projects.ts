import { type Db, inTransaction } from '../db.ts';
import { InvalidInput, NotFound } from '../errors.ts';
import { newId } from '../ids.ts';
import { type Auth, requireAdmin, requireSelfOrAdmin } from '../policy.ts';
import { domainsRepo } from '../repos/domains.ts';
import { type ProjectRow, projectsRepo } from '../repos/projects.ts';
import { roleAssignmentsRepo } from '../repos/role-assignments.ts';
import { usersRepo } from '../repos/users.ts';
import { DEFAULT_DOMAIN_ID, stripUndefined } from './domains.ts';
import type { RevocationList } from './revocations.ts';

export interface ProjectInput {
  name?: string | undefined;
  domain_id?: string | undefined;
  /** Only the project's own domain (or null) is accepted: there is no project hierarchy. */
  parent_id?: string | null | undefined;
  description?: string | undefined;
  enabled?: boolean | undefined;
  tags?: string[] | undefined;
  options?: Record<string, unknown> | undefined;
  extra?: Record<string, unknown> | undefined;
}

export interface ProjectFilter {
  name?: string | undefined;
  domain_id?: string | undefined;
  enabled?: boolean | undefined;
}

function checkParent(parentId: string | null | undefined, domainId: string): void {
  if (parentId !== undefined && parentId !== null && parentId !== domainId)
    throw new InvalidInput(
      `Project hierarchies are not supported: parent_id must be the project's domain (${domainId}) or be left out.`,
    );
}

export function createProjectService({ db, revocations }: { db: Db; revocations: RevocationList }) {
  async function mustGet(id: string): Promise<ProjectRow> {
    const p = await projectsRepo.get(db, id);
    if (!p) throw new NotFound(`Could not find project: ${id}.`);
    return p;
  }
  return {
    async list(auth: Auth, filter: ProjectFilter): Promise<ProjectRow[]> {
      requireAdmin(auth, 'identity:list_projects');
      return projectsRepo.list(db, filter);
    },
    /** GET /v3/users/{id}/projects and /v3/auth/projects: the projects a user holds a role on. */
    async listForUser(auth: Auth, userId: string, filter: ProjectFilter = {}): Promise<ProjectRow[]> {
      requireSelfOrAdmin(auth, userId, 'identity:list_user_projects');
      if (!(await usersRepo.get(db, userId))) throw new NotFound(`Could not find user: ${userId}.`);
      return projectsRepo.listForUser(db, userId, filter);
    },
    /** Non-admins may read only projects they hold a role on (others are 404, not 403). */
    async get(auth: Auth, id: string): Promise<ProjectRow> {
      if (!auth.isAdmin && auth.projectId !== id) {
        const mine = await roleAssignmentsRepo.list(db, {
          type: 'UserProject',
          actor_id: auth.userId,
          target_id: id,
        });
        if (mine.length === 0) throw new NotFound(`Could not find project: ${id}.`);
      }
      return mustGet(id);
    },
    async create(auth: Auth, input: ProjectInput & { name: string }): Promise<ProjectRow> {
      requireAdmin(auth, 'identity:create_project');
      const domainId = input.domain_id ?? DEFAULT_DOMAIN_ID;
      if (!(await domainsRepo.get(db, domainId)))
        throw new InvalidInput(`Domain ${domainId} does not exist.`);
      checkParent(input.parent_id, domainId);
      const { parent_id: _parent, ...fields } = input;
      return projectsRepo.insert(db, {
        id: newId(),
        ...stripUndefined(fields),
        domain_id: domainId,
        extra: input.extra ?? {},
      });
    },
    async update(auth: Auth, id: string, input: ProjectInput): Promise<ProjectRow> {
      requireAdmin(auth, 'identity:update_project');
      const current = await mustGet(id);
      if (input.domain_id !== undefined && input.domain_id !== current.domain_id)
        throw new InvalidInput('A project cannot move to another domain.');
      checkParent(input.parent_id, current.domain_id);
      const { parent_id: _parent, ...fields } = input;
      const patch = { ...fields, extra: input.extra ? { ...current.extra, ...input.extra } : undefined };
      return inTransaction(db, async (trx) => {
        const updated = (await projectsRepo.update(trx, id, stripUndefined(patch))) as ProjectRow;
        if (current.enabled && input.enabled === false) await revocations.revokeProject(trx, id);
        return updated;
      });
    },
    async remove(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'identity:delete_project');
      await mustGet(id);
      await inTransaction(db, async (trx) => {
        await roleAssignmentsRepo.removeTarget(trx, id);
        await projectsRepo.remove(trx, id);
        await revocations.revokeProject(trx, id);
      });
    },
  };
}
