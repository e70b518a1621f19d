import { type Db, inTransaction } from '../db.ts';
import { Conflict, Forbidden, NotFound } from '../errors.ts';
import { newId } from '../ids.ts';
import { type Auth, requireAdmin } from '../policy.ts';
import { type DomainRow, domainsRepo } from '../repos/domains.ts';
import { projectsRepo } from '../repos/projects.ts';
import { usersRepo } from '../repos/users.ts';
import type { RevocationList } from './revocations.ts';

export const DEFAULT_DOMAIN_ID = 'default';

export interface DomainInput {
  name?: string | undefined;
  description?: string | undefined;
  enabled?: boolean | undefined;
  extra?: Record<string, unknown> | undefined;
}

export function createDomainService({ db, revocations }: { db: Db; revocations: RevocationList }) {
  async function mustGet(id: string): Promise<DomainRow> {
    const d = await domainsRepo.get(db, id);
    if (!d) throw new NotFound(`Could not find domain: ${id}.`);
    return d;
  }
  return {
    async list(
      auth: Auth,
      filter: { name?: string | undefined; enabled?: boolean | undefined },
    ): Promise<DomainRow[]> {
      requireAdmin(auth, 'identity:list_domains');
      return domainsRepo.list(db, filter);
    },
    async get(auth: Auth, id: string): Promise<DomainRow> {
      if (!auth.isAdmin && id !== auth.userDomainId) throw new NotFound(`Could not find domain: ${id}.`);
      return mustGet(id);
    },
    async create(auth: Auth, input: DomainInput & { name: string }): Promise<DomainRow> {
      requireAdmin(auth, 'identity:create_domain');
      return domainsRepo.insert(db, { id: newId(), ...input, extra: input.extra ?? {} });
    },
    async update(auth: Auth, id: string, input: DomainInput): Promise<DomainRow> {
      requireAdmin(auth, 'identity:update_domain');
      const current = await mustGet(id);
      if (input.enabled === false && id === DEFAULT_DOMAIN_ID)
        throw new Forbidden('The default domain cannot be disabled.');
      const patch = { ...input, extra: input.extra ? { ...current.extra, ...input.extra } : undefined };
      return inTransaction(db, async (trx) => {
        const updated = (await domainsRepo.update(trx, id, stripUndefined(patch))) as DomainRow;
        if (current.enabled && input.enabled === false) {
          for (const u of await usersRepo.list(trx, { domain_id: id }))
            await revocations.revokeUser(trx, u.id);
        }
        return updated;
      });
    },
    async remove(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'identity:delete_domain');
      const d = await mustGet(id);
      if (id === DEFAULT_DOMAIN_ID) throw new Forbidden('The default domain cannot be deleted.');
      if (d.enabled) throw new Forbidden(`Domain ${id} is enabled; disable it before deleting it.`);
      const projects = await projectsRepo.list(db, { domain_id: id });
      const users = await usersRepo.list(db, { domain_id: id });
      if (projects.length > 0 || users.length > 0)
        throw new Conflict(`Domain ${id} still owns projects or users; delete them before the domain.`);
      await domainsRepo.remove(db, id);
    },
  };
}

/** Drops keys whose value is undefined, so a PATCH only touches what was sent. */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
