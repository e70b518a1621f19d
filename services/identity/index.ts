import type { Config } from '../config.ts';
import type { Db } from '../db.ts';
import { createApplicationCredentialService } from './application-credentials.ts';
import { createDomainService } from './domains.ts';
import { KeyRing } from './key-ring.ts';
import { createLoginThrottle } from './login-throttle.ts';
import { createProjectService } from './projects.ts';
import { RevocationList } from './revocations.ts';
import { createRoleAssignmentService } from './role-assignments.ts';
import { createRoleService } from './roles.ts';
import { createTokenService } from './tokens.ts';
import { createUserService } from './users.ts';

/** The identity services wired to one database and configuration. Call init() before use. */
export function createIdentity(db: Db, config: Config) {
  const keys = new KeyRing(db, config.tokenLifetimeSeconds);
  const revocations = new RevocationList(
    db,
    config.revocationCacheSeconds * 1000,
    config.tokenLifetimeSeconds * 1000,
  );
  const throttle = createLoginThrottle(db, config.login);
  const deps = { db, config, keys, revocations, throttle };
  return {
    keys,
    revocations,
    throttle,
    tokens: createTokenService(deps),
    domains: createDomainService(deps),
    projects: createProjectService(deps),
    users: createUserService(deps),
    roles: createRoleService(deps),
    roleAssignments: createRoleAssignmentService(deps),
    applicationCredentials: createApplicationCredentialService(deps),
    async init(): Promise<void> {
      await keys.init();
    },
  };
}

export type Identity = ReturnType<typeof createIdentity>;
