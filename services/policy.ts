import { Forbidden } from './errors.ts';

/** Who is calling, as the auth middleware derives it from a validated token. */
export interface Auth {
  userId: string;
  userName: string;
  userDomainId: string;
  /** null for an unscoped token. */
  projectId: string | null;
  projectName: string | null;
  /** Role names, implied roles included. */
  roles: string[];
  isAdmin: boolean;
  auditId: string;
  /** Set when the token came from an application credential. */
  applicationCredential: { id: string; restricted: boolean } | null;
  /** Issued from the configured static admin token rather than a real token. */
  isStaticAdmin: boolean;
}

export const Persona = {
  ADMIN: 'admin',
  MEMBER: 'member',
  READER: 'reader',
} as const;
export type Persona = (typeof Persona)[keyof typeof Persona];

export function requireAdmin(auth: Auth, action: string): void {
  if (!auth.isAdmin) throw new Forbidden(`Policy does not allow ${action} to be performed.`);
}

/** The caller is the user in question, or an admin. */
export function requireSelfOrAdmin(auth: Auth, userId: string, action: string): void {
  if (auth.userId !== userId) requireAdmin(auth, action);
}

/** The caller is the user in question (admins included only for themselves, as Keystone does). */
export function requireSelf(auth: Auth, userId: string, action: string): void {
  if (auth.userId !== userId)
    throw new Forbidden(`Policy does not allow ${action} to be performed for another user.`);
}

/** A role held on the caller's token project (implied roles count). */
export function hasProjectRole(auth: Auth, projectId: string, role: Persona): boolean {
  return auth.projectId === projectId && auth.roles.includes(role);
}

/**
 * Manila's PROJECT_READER: a reader (members and admins imply it) of the token's project, or an
 * admin. An unscoped token reads nothing.
 */
export function requireReader(auth: Auth, action: string): void {
  if (auth.isAdmin) return;
  if (!auth.projectId || !auth.roles.includes(Persona.READER))
    throw new Forbidden(
      `Policy does not allow ${action} to be performed: a project-scoped token with the reader role is required.`,
    );
}

/**
 * Whose resources a list shows: the caller's project's. An admin with all_tenants sees every
 * project's (null), or the one project_id names; all_tenants from anyone else is silently
 * ignored, as Manila does (the clients send it on every lookup by name).
 */
export function listedProject(auth: Auth, q: { allTenants: boolean; projectId?: string | undefined }) {
  return auth.isAdmin && q.allTenants ? (q.projectId ?? null) : auth.projectId;
}

/** Manila's PROJECT_MEMBER: a member of the token's project, or an admin. */
export function requireMember(auth: Auth, action: string): void {
  if (auth.isAdmin) return;
  if (!auth.projectId || !auth.roles.includes(Persona.MEMBER))
    throw new Forbidden(
      `Policy does not allow ${action} to be performed: a project-scoped token with the member role is required.`,
    );
}
