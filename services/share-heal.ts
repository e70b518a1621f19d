import type { HealInfo, ShareHeal, SplitBrainPolicy } from '../backends/types.ts';
import { type BackendCalls, shareRef, viaBackend } from './backend-calls.ts';
import type { Db } from './db.ts';
import { InvalidInput, NotFound } from './errors.ts';
import { type Auth, requireAdmin } from './policy.ts';
import type { Repos } from './repos/index.ts';
import type { ShareRow } from './repos/shares.ts';

/**
 * Self-heal of a share's replicas, for operators (GlusterFS's `volume heal … info|full|split-brain`):
 * what is pending or in split-brain, start a heal, resolve a split-brain path by a policy. Admin
 * only; the share's backend does the work, directly (these are reads and hand-offs, not changes the
 * share API records).
 */
export function createShareHealService(deps: { db: Db; repos: Pick<Repos, 'shares'>; calls: BackendCalls }) {
  const { db, repos, calls } = deps;

  async function placed(
    auth: Auth,
    id: string,
    action: string,
  ): Promise<{ share: ShareRow; heal: ShareHeal }> {
    requireAdmin(auth, `share:${action}`);
    const share = await repos.shares.get(db, id);
    if (!share) throw new NotFound(`Share ${id} could not be found.`);
    if (!share.host)
      throw new InvalidInput(`Share ${id} has no replicas yet (status '${share.status}'): nothing to heal.`);
    const heal = calls.backendFor(share.host).heal;
    if (!heal)
      throw new InvalidInput(
        `Share ${id} is on a backend without self-heal (${share.host}); only replicated backends heal.`,
      );
    return { share, heal };
  }

  return {
    async info(auth: Auth, id: string): Promise<HealInfo & { share: ShareRow }> {
      const { share, heal } = await placed(auth, id, 'heal_info');
      return { share, ...(await viaBackend(() => heal.info(shareRef(share)))) };
    },

    async start(auth: Auth, id: string, full: boolean): Promise<void> {
      const { share, heal } = await placed(auth, id, 'heal');
      await viaBackend(() => heal.start(shareRef(share), full));
    },

    async resolve(
      auth: Auth,
      id: string,
      r: { path: string; policy: SplitBrainPolicy; sourceBrick?: string | undefined },
    ): Promise<string> {
      const { share, heal } = await placed(auth, id, 'heal_resolve');
      if (r.policy === 'source-brick' && !r.sourceBrick)
        throw new InvalidInput(
          "The policy 'source-brick' needs source_brick: the brick id or address whose copy wins.",
        );
      return viaBackend(() => heal.resolve(shareRef(share), r.path, r.policy, r.sourceBrick));
    },
  };
}

export type ShareHealService = ReturnType<typeof createShareHealService>;
