import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import type { Config } from '../../services/config.ts';
import { InvalidInput } from '../../services/errors.ts';
import type { Identity } from '../../services/identity/index.ts';
import { parse } from '../validation.ts';
import * as view from '../views/identity.ts';

const Id = z.string().min(1).max(64);
// Keystone treats a present-but-empty ?effective or ?include_names as true.
const Flag = z
  .string()
  .optional()
  .transform((v) => v !== undefined && !['false', 'False', '0'].includes(v));
const Query = z
  .object({
    'user.id': Id.optional(),
    'group.id': Id.optional(),
    'role.id': Id.optional(),
    'scope.project.id': Id.optional(),
    'scope.domain.id': Id.optional(),
    effective: Flag,
    include_names: Flag,
  })
  .loose();

export function roleAssignmentsRouter(config: Config, identity: Identity, auth: Middleware): Router {
  const r = new Router({ prefix: '/identity/v3' });
  const grant = '/projects/:projectId/users/:userId/roles/:roleId';
  r.put(grant, auth, async (ctx) => {
    const { projectId, userId, roleId } = ctx.params as Record<string, string>;
    await identity.roleAssignments.grant(ctx.state.auth, projectId!, userId!, roleId!);
    ctx.status = 204;
  });
  // GET also answers HEAD, which is how Keystone clients check a grant.
  r.get(grant, auth, async (ctx) => {
    const { projectId, userId, roleId } = ctx.params as Record<string, string>;
    await identity.roleAssignments.check(ctx.state.auth, projectId!, userId!, roleId!);
    ctx.status = 204;
  });
  r.delete(grant, auth, async (ctx) => {
    const { projectId, userId, roleId } = ctx.params as Record<string, string>;
    await identity.roleAssignments.revoke(ctx.state.auth, projectId!, userId!, roleId!);
    ctx.status = 204;
  });
  r.get('/projects/:projectId/users/:userId/roles', auth, async (ctx) => {
    const { projectId, userId } = ctx.params as Record<string, string>;
    const roles = await identity.roleAssignments.listGrants(ctx.state.auth, projectId!, userId!);
    ctx.body = {
      roles: roles.map((x) => view.role(config, x)),
      links: view.collectionLinks(config, `projects/${projectId}/users/${userId}/roles`),
    };
  });
  r.get('/role_assignments', auth, async (ctx) => {
    const q = parse(Query, ctx.query, 'query');
    // Keystone refuses filter combinations that can never both hold.
    if (q['user.id'] !== undefined && q['group.id'] !== undefined)
      throw new InvalidInput('Specify a user or a group, not both.');
    if (q['scope.project.id'] !== undefined && q['scope.domain.id'] !== undefined)
      throw new InvalidInput('Specify a project or a domain scope, not both.');
    if (q.effective && q['group.id'] !== undefined)
      throw new InvalidInput('Combining effective and group filter will always result in an empty list.');
    // No groups and no domain-level grants exist here, so those filters match nothing.
    const none = q['group.id'] !== undefined || q['scope.domain.id'] !== undefined;
    const rows = none
      ? []
      : await identity.roleAssignments.list(ctx.state.auth, {
          userId: q['user.id'],
          projectId: q['scope.project.id'],
          roleId: q['role.id'],
          effective: q.effective,
        });
    const names = q.include_names ? await identity.roleAssignments.names(rows) : null;
    ctx.body = {
      role_assignments: rows.map((a) => view.roleAssignment(config, a, names)),
      links: view.collectionLinks(config, 'role_assignments'),
    };
  });
  return r;
}
