import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.ts';
import { type Db, inTransaction } from '../db.ts';
import { newId, newSecret } from '../ids.ts';
import { Persona } from '../policy.ts';
import { domainsRepo } from '../repos/domains.ts';
import { projectsRepo } from '../repos/projects.ts';
import { roleAssignmentsRepo } from '../repos/role-assignments.ts';
import { type RoleRow, rolesRepo } from '../repos/roles.ts';
import { usersRepo } from '../repos/users.ts';
import { identityUrl } from './catalog.ts';
import { DEFAULT_DOMAIN_ID } from './domains.ts';
import { hashSecret } from './passwords.ts';

export const ADMIN_NAME = 'admin';

export interface BootstrapResult {
  /** The password set by this run (generated or given); null when nothing was (re)set. */
  password: string | null;
  generated: boolean;
  adminUserId: string;
  adminProjectId: string;
}

/**
 * Makes sure the default domain, the admin/member/reader roles (admin implies member implies
 * reader), an `admin` project and an `admin` user holding the admin role exist, like
 * `keystone-manage bootstrap`. Safe to run on every start and from several servers at once.
 * The admin password is set only when the admin user is created, or when `resetPassword` asks.
 */
export async function bootstrapIdentity(
  db: Db,
  opts: { password: string | null; resetPassword: boolean },
): Promise<BootstrapResult> {
  return inTransaction(db, async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [0x626f6f74]);
    if (!(await domainsRepo.get(trx, DEFAULT_DOMAIN_ID)))
      await domainsRepo.insert(trx, {
        id: DEFAULT_DOMAIN_ID,
        name: 'Default',
        description: 'The default domain',
        extra: {},
      });
    const roles: Record<string, RoleRow> = {};
    for (const name of [Persona.ADMIN, Persona.MEMBER, Persona.READER]) {
      roles[name] =
        (await rolesRepo.getByName(trx, name)) ??
        (await rolesRepo.insert(trx, { id: newId(), name, extra: {} }));
    }
    await rolesRepo.addImplied(trx, roles.admin!.id, roles.member!.id);
    await rolesRepo.addImplied(trx, roles.member!.id, roles.reader!.id);

    const project =
      (await projectsRepo.getByName(trx, DEFAULT_DOMAIN_ID, ADMIN_NAME)) ??
      (await projectsRepo.insert(trx, {
        id: newId(),
        name: ADMIN_NAME,
        domain_id: DEFAULT_DOMAIN_ID,
        description: 'Bootstrap project for initializing the cloud.',
        extra: {},
      }));
    let user = await usersRepo.getByName(trx, DEFAULT_DOMAIN_ID, ADMIN_NAME);
    let password: string | null = null;
    let generated = false;
    if (!user || opts.resetPassword) {
      password = opts.password ?? newSecret(18);
      generated = opts.password === null;
      const hash = await hashSecret(password);
      user = user
        ? ((await usersRepo.update(trx, user.id, { password_hash: hash, password_changed_at: new Date() })) ??
          user)
        : await usersRepo.insert(trx, {
            id: newId(),
            name: ADMIN_NAME,
            domain_id: DEFAULT_DOMAIN_ID,
            password_hash: hash,
            password_changed_at: new Date(),
            default_project_id: project.id,
            extra: {},
          });
    }
    await roleAssignmentsRepo.add(trx, {
      type: 'UserProject',
      actor_id: user.id,
      target_id: project.id,
      role_id: roles.admin!.id,
    });
    return { password, generated, adminUserId: user.id, adminProjectId: project.id };
  });
}

/** Writes `$ABACA_DATA_DIR/openrc` (mode 0600) so `source data/openrc` logs a shell in as admin. */
export function writeOpenrc(config: Config, password: string): string {
  mkdirSync(config.dataDir, { recursive: true });
  const file = path.join(config.dataDir, 'openrc');
  const quote = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
  const lines = [
    '# Written by abaca-server at bootstrap. Source it: . data/openrc',
    `export OS_AUTH_URL=${quote(identityUrl(config))}`,
    'export OS_AUTH_TYPE=password',
    'export OS_IDENTITY_API_VERSION=3',
    `export OS_USERNAME=${quote(ADMIN_NAME)}`,
    `export OS_PASSWORD=${quote(password)}`,
    `export OS_PROJECT_NAME=${quote(ADMIN_NAME)}`,
    'export OS_USER_DOMAIN_NAME=Default',
    'export OS_PROJECT_DOMAIN_NAME=Default',
    `export OS_REGION_NAME=${quote(config.region)}`,
    'export OS_INTERFACE=public',
    // HTTPS with a private CA: the openstack CLI (keystoneauth) and abaca's CLI trust it from here.
    ...(config.tls?.ca ? [`export OS_CACERT=${quote(config.tls.ca)}`] : []),
    '',
  ];
  writeFileSync(file, lines.join('\n'), { mode: 0o600 });
  return file;
}
