import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Config } from '../../services/config.ts';
import type { Identity } from '../../services/identity/index.ts';
import { applicationCredentialsRouter } from './application-credentials.ts';
import { authTokensRouter } from './auth-tokens.ts';
import { domainsRouter } from './domains.ts';
import { projectsRouter } from './projects.ts';
import { roleAssignmentsRouter } from './role-assignments.ts';
import { rolesRouter } from './roles.ts';
import { usersRouter } from './users.ts';
import { identityVersionsRouter } from './versions.ts';

/** The Keystone v3 subset under /identity. */
export function identityRouters(config: Config, identity: Identity, auth: Middleware): Router[] {
  return [
    identityVersionsRouter(config),
    authTokensRouter(config, identity, auth),
    domainsRouter(config, identity, auth),
    projectsRouter(config, identity, auth),
    roleAssignmentsRouter(config, identity, auth),
    applicationCredentialsRouter(config, identity, auth),
    usersRouter(config, identity, auth),
    rolesRouter(config, identity, auth),
  ];
}
