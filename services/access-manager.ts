import type { AccessLevel, AccessType } from '../backends/types.ts';
import { backendCalls, errorText, failureText, shareRef } from './backend-calls.ts';
import { AccessState, rulesStatus, type TaskKind } from './constants.ts';
import type { Db, Executor } from './db.ts';
import { MessageAction, MessageDetail, recordMessage } from './messages.ts';
import type { Repos } from './repos/index.ts';
import type { ConfiguredBackend } from './scheduler.ts';
import type { TaskHandler } from './tasks.ts';

/**
 * The share.access task: moves queued rules to applying/denying, gives the backend the share's
 * complete rule set in one updateAccess call, then records each rule's state and the share's
 * access_rules_status. Rules queued while the backend works keep their state; their own task
 * (queued behind this one, tasks of a share run in order) picks them up.
 */
export function createAccessManager(deps: {
  db: Db;
  repos: Pick<Repos, 'shares' | 'accessRules' | 'messages'>;
  backends: ConfiguredBackend[];
}) {
  const { db, repos } = deps;
  const { backendFor } = backendCalls(deps.backends);

  async function settleShareStatus(ex: Executor, shareId: string): Promise<void> {
    const rules = await repos.accessRules.forShare(ex, shareId);
    await repos.shares.update(ex, shareId, { access_rules_status: rulesStatus(rules.map((r) => r.state)) });
  }

  /** share.access: give the backend the share's whole rule set, then record what it applied. */
  const updateAccess: TaskHandler<typeof TaskKind.SHARE_ACCESS> = {
    async run(task) {
      const locked = await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (!share?.host) return null;
        await repos.accessRules.moveStates(trx, share.id, AccessState.QUEUED_TO_APPLY, AccessState.APPLYING);
        await repos.accessRules.moveStates(trx, share.id, AccessState.QUEUED_TO_DENY, AccessState.DENYING);
        return { share, host: share.host, rules: await repos.accessRules.forShare(trx, share.id) };
      });
      // Nothing on its way (an earlier task took it all): the backend already has this set.
      if (!locked?.rules.some((r) => r.state === AccessState.APPLYING || r.state === AccessState.DENYING))
        return null;
      const { share, host, rules } = locked;
      const kept = rules.filter((r) => r.state !== AccessState.DENYING);
      const states = await backendFor(host).updateAccess(
        shareRef(share),
        kept.map((r) => ({
          id: r.id,
          accessType: r.access_type as AccessType,
          accessTo: r.access_to,
          accessLevel: r.access_level as AccessLevel,
        })),
      );
      return {
        states,
        sent: kept.map((r) => r.id),
        denied: rules.filter((r) => r.state === AccessState.DENYING).map((r) => r.id),
      };
    },
    async succeed(task, r, finish) {
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (share && r) {
          const now = new Map((await repos.accessRules.forShare(trx, share.id)).map((x) => [x.id, x.state]));
          const settled: string[] = [AccessState.APPLYING, AccessState.ACTIVE, AccessState.ERROR];
          for (const id of r.sent) {
            // A rule denied while the backend worked keeps its queued_to_deny for the next task.
            if (!settled.includes(now.get(id) ?? '')) continue;
            await repos.accessRules.setState(
              trx,
              id,
              r.states[id] === 'active' ? AccessState.ACTIVE : AccessState.ERROR,
            );
          }
          for (const id of r.denied)
            if (now.get(id) === AccessState.DENYING) await repos.accessRules.remove(trx, id);
        }
        if (share) await settleShareStatus(trx, share.id);
        await finish(trx, 'done', null);
      });
    },
    async fail(task, err, finish) {
      await db.transaction(async (trx) => {
        const share = await repos.shares.getForUpdate(trx, task.resource_id);
        if (share) {
          await repos.accessRules.moveStates(trx, share.id, AccessState.APPLYING, AccessState.ERROR);
          await repos.accessRules.moveStates(trx, share.id, AccessState.DENYING, AccessState.ERROR);
          await settleShareStatus(trx, share.id);
          await recordMessage(repos.messages, trx, {
            projectId: share.project_id,
            resourceType: 'SHARE',
            resourceId: share.id,
            action: MessageAction.UPDATE_ACCESS_RULES,
            detail: MessageDetail.DRIVER_FAILED,
            text: failureText(err),
          });
        }
        await finish(trx, 'failed', errorText(err));
      });
    },
  };

  return { updateAccess };
}
