import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AccessLevel, AccessType } from '../backends/types.ts';
import { checkAccessTo } from './access-to.ts';
import type { BackendCalls } from './backend-calls.ts';
import { AccessRulesStatus, AccessState, ShareStatus } from './constants.ts';
import { inTransaction, type Trx } from './db.ts';
import { InvalidInput, NotFound } from './errors.ts';
import { isUuid } from './ids.ts';
import { type Auth, requireMember, requireReader } from './policy.ts';
import { refuseInRecycleBin } from './recycle-bin.ts';
import type { AccessRule } from './repos/access-rules.ts';
import type { Repos } from './repos/index.ts';
import type { ShareRow } from './repos/shares.ts';
import type { ChangeDeps } from './tasks.ts';

export interface AllowInput {
  accessType: AccessType;
  accessTo: string;
  accessLevel: AccessLevel;
  metadata: Record<string, string>;
}

/**
 * Access rules: allow and deny queue a change and a share.access task in one transaction; the task
 * (access-manager.ts) hands the backend the share's whole rule set at once.
 */
export function createAccessRuleService(
  deps: Omit<ChangeDeps, 'quotas'> & {
    repos: Pick<Repos, 'shares' | 'accessRules'>;
    log: Logger;
    calls: BackendCalls;
  },
) {
  const { db, repos, tasks, log, calls, kick } = deps;

  async function queueSync(trx: Trx, share: ShareRow): Promise<void> {
    await repos.shares.update(trx, share.id, { access_rules_status: AccessRulesStatus.SYNCING });
    await tasks.updateAccess(trx, share.id);
  }

  return {
    async allow(auth: Auth, shareId: string, input: AllowInput): Promise<AccessRule> {
      requireMember(auth, 'share:allow_access');
      // Read before the transaction: asking the backend what it enforces is I/O.
      const share = await repos.shares.owned(db, auth, shareId);
      const checked = checkAccessTo(input.accessType, input.accessTo);
      const caps = await calls.capabilitiesFor(share.host);
      if (caps && !caps.accessTypes.includes(input.accessType))
        throw new InvalidInput(
          `The backend of share ${shareId} cannot enforce '${input.accessType}' access rules; it supports: ${caps.accessTypes.join(', ')}.`,
        );
      if (checked.warning) log.warn({ share_id: shareId, project_id: auth.projectId }, checked.warning);
      const id = randomUUID();
      const rule = await inTransaction(db, async (trx) => {
        const locked = await repos.shares.lockOwned(trx, auth, shareId);
        refuseInRecycleBin(locked, 'given access');
        if (locked.status !== ShareStatus.AVAILABLE)
          throw new InvalidInput(
            `Access to share ${shareId} cannot be changed while its status is '${locked.status}'; it must be 'available'.`,
          );
        const same = await repos.accessRules.findSame(trx, shareId, input.accessType, checked.value);
        if (same)
          throw new InvalidInput(
            [AccessState.QUEUED_TO_DENY, AccessState.DENYING].includes(same.state as 'denying')
              ? `Access rule ${input.accessType}:${checked.value} on share ${shareId} is being removed; add it again once it is gone.`
              : `Share ${shareId} already has access rule ${same.id} for ${input.accessType}:${checked.value} (${same.access_level}); delete it first to change the level.`,
          );
        await repos.accessRules.insert(trx, {
          id,
          share_id: shareId,
          access_type: input.accessType,
          access_to: checked.value,
          access_level: input.accessLevel,
          state: AccessState.QUEUED_TO_APPLY,
          access_key: null,
        });
        await repos.accessRules.setMetadata(trx, id, input.metadata);
        await queueSync(trx, locked);
        return repos.accessRules.owned(trx, auth, id);
      });
      kick();
      return rule;
    },

    async deny(auth: Auth, shareId: string, accessId: string): Promise<void> {
      requireMember(auth, 'share:deny_access');
      await inTransaction(db, async (trx) => {
        const locked = await repos.shares.lockOwned(trx, auth, shareId);
        refuseInRecycleBin(locked, 'denied access');
        const current = isUuid(accessId) ? await repos.accessRules.get(trx, accessId) : undefined;
        if (current?.share_id !== shareId)
          throw new NotFound(`Access rule ${accessId} could not be found on share ${shareId}.`);
        // Already on its way out: asking again changes nothing.
        if (current.state === AccessState.QUEUED_TO_DENY || current.state === AccessState.DENYING) return;
        await repos.accessRules.setState(trx, accessId, AccessState.QUEUED_TO_DENY);
        await queueSync(trx, locked);
      });
      kick();
    },

    async listForShare(
      auth: Auth,
      shareId: string,
      metadata: Record<string, string> = {},
    ): Promise<AccessRule[]> {
      requireReader(auth, 'share_access_rule:index');
      await repos.shares.owned(db, auth, shareId);
      return repos.accessRules.forShare(db, shareId, metadata);
    },

    async get(auth: Auth, id: string): Promise<AccessRule> {
      requireReader(auth, 'share_access_rule:get');
      return repos.accessRules.owned(db, auth, id);
    },

    async setMetadata(
      auth: Auth,
      id: string,
      metadata: Record<string, string>,
    ): Promise<Record<string, string>> {
      requireMember(auth, 'share_access_metadata:update');
      return inTransaction(db, async (trx) => {
        await repos.accessRules.lockOwned(trx, auth, id);
        await repos.accessRules.setMetadata(trx, id, metadata);
        return (await repos.accessRules.owned(trx, auth, id)).metadata;
      });
    },

    async deleteMetadata(auth: Auth, id: string, key: string): Promise<void> {
      requireMember(auth, 'share_access_metadata:delete');
      await inTransaction(db, async (trx) => {
        await repos.accessRules.lockOwned(trx, auth, id);
        if (!(await repos.accessRules.deleteMetadata(trx, id, key)))
          throw new NotFound(`Access rule ${id} has no metadata key ${key}.`);
      });
    },
  };
}

export type AccessRuleService = ReturnType<typeof createAccessRuleService>;
