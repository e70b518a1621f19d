import { type Db, inTransaction } from '../db.ts';
import { InvalidInput, NotFound, Unauthorized } from '../errors.ts';
import { newId } from '../ids.ts';
import { type Auth, requireAdmin, requireSelf } from '../policy.ts';
import { domainsRepo } from '../repos/domains.ts';
import { loginFailuresRepo } from '../repos/login-failures.ts';
import { type UserRow, usersRepo } from '../repos/users.ts';
import { DEFAULT_DOMAIN_ID, stripUndefined } from './domains.ts';
import { type LoginThrottle, userKey } from './login-throttle.ts';
import { hashSecret, verifySecret } from './passwords.ts';
import type { RevocationList } from './revocations.ts';

export interface UserInput {
  name?: string | undefined;
  domain_id?: string | undefined;
  password?: string | null | undefined;
  enabled?: boolean | undefined;
  default_project_id?: string | null | undefined;
  options?: Record<string, unknown> | undefined;
  extra?: Record<string, unknown> | undefined;
}

export interface UserFilter {
  name?: string | undefined;
  domain_id?: string | undefined;
  enabled?: boolean | undefined;
}

export function createUserService({
  db,
  revocations,
  throttle,
}: {
  db: Db;
  revocations: RevocationList;
  throttle: LoginThrottle;
}) {
  async function mustGet(id: string): Promise<UserRow> {
    const u = await usersRepo.get(db, id);
    if (!u) throw new NotFound(`Could not find user: ${id}.`);
    return u;
  }
  return {
    async list(auth: Auth, filter: UserFilter): Promise<UserRow[]> {
      requireAdmin(auth, 'identity:list_users');
      return usersRepo.list(db, filter);
    },
    /** Non-admins may read only themselves; anyone else is 404 to them. */
    async get(auth: Auth, id: string): Promise<UserRow> {
      if (!auth.isAdmin && auth.userId !== id) throw new NotFound(`Could not find user: ${id}.`);
      return mustGet(id);
    },
    async create(auth: Auth, input: UserInput & { name: string }): Promise<UserRow> {
      requireAdmin(auth, 'identity:create_user');
      const domainId = input.domain_id ?? DEFAULT_DOMAIN_ID;
      if (!(await domainsRepo.get(db, domainId)))
        throw new InvalidInput(`Domain ${domainId} does not exist.`);
      const { password, ...rest } = input;
      return usersRepo.insert(db, {
        id: newId(),
        ...stripUndefined(rest),
        domain_id: domainId,
        extra: input.extra ?? {},
        password_hash: password ? await hashSecret(password) : null,
        password_changed_at: password ? new Date() : null,
      });
    },
    async update(auth: Auth, id: string, input: UserInput): Promise<UserRow> {
      requireAdmin(auth, 'identity:update_user');
      const current = await mustGet(id);
      if (input.domain_id !== undefined && input.domain_id !== current.domain_id)
        throw new InvalidInput('A user cannot move to another domain.');
      const { password, ...rest } = input;
      const patch: Partial<UserRow> = {
        ...stripUndefined(rest),
        extra: input.extra ? { ...current.extra, ...input.extra } : current.extra,
      };
      if (password !== undefined) {
        patch.password_hash = password ? await hashSecret(password) : null;
        patch.password_changed_at = new Date();
      }
      return inTransaction(db, async (trx) => {
        const updated = (await usersRepo.update(trx, id, patch)) as UserRow;
        if (password !== undefined || (current.enabled && input.enabled === false))
          await revocations.revokeUser(trx, id);
        // An admin's update of the user is how a locked account is unlocked (login-throttle.ts).
        await loginFailuresRepo.clear(trx, [userKey(id)]);
        return updated;
      });
    },
    async remove(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'identity:delete_user');
      await mustGet(id);
      if (id === auth.userId) throw new InvalidInput('You cannot delete the user you are authenticated as.');
      await inTransaction(db, async (trx) => {
        await usersRepo.remove(trx, id); // assignments and application credentials cascade
        await revocations.revokeUser(trx, id);
      });
    },
    /** POST /v3/users/{id}/password: a user changes their own password, proving the old one. */
    async changePassword(
      auth: Auth,
      id: string,
      original: string,
      password: string,
      source?: string,
    ): Promise<void> {
      requireSelf(auth, id, 'identity:change_password');
      const user = await mustGet(id);
      // Proving the old password is a login like any other: the same throttling.
      const attempt = await throttle.begin({ account: userKey(id), address: source });
      const ok = await verifySecret(original, user.password_hash);
      await attempt.done(ok);
      if (!ok) throw new Unauthorized('The original password is not correct.');
      const hash = await hashSecret(password);
      await inTransaction(db, async (trx) => {
        await usersRepo.update(trx, id, { password_hash: hash, password_changed_at: new Date() });
        await revocations.revokeUser(trx, id);
      });
    },
  };
}
