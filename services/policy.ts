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
