import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { SPLIT_BRAIN_POLICIES } from '../backends/types.ts';
import type { ShareHealService } from '../services/share-heal.ts';
import { parse } from './validation.ts';

type HealInfo = Awaited<ReturnType<ShareHealService['info']>>;

/**
 * The share's replication health in one word: split-brain (an operator must choose), degraded (a
 * replica is unreachable), healing (replicas hold markers of missed changes), else healthy.
 */
function healStatus(h: HealInfo): 'healthy' | 'healing' | 'degraded' | 'split-brain' {
  if (h.replicas.some((r) => r.entries.some((e) => e.splitBrain))) return 'split-brain';
  if (h.replicas.some((r) => !r.connected)) return 'degraded';
  if (h.replicas.some((r) => r.count > 0) || (h.snapshots ?? []).length > 0) return 'healing';
  return 'healthy';
}

export function healView(h: HealInfo) {
  const splitBrain = new Set<string>();
  const pending = new Set<string>();
  for (const r of h.replicas)
    for (const e of r.entries) {
      pending.add(e.path);
      if (e.splitBrain) splitBrain.add(e.path);
    }
  return {
    share_id: h.share.id,
    status: healStatus(h),
    pending_entries: Math.max(pending.size, ...h.replicas.map((r) => r.count)),
    split_brain_entries: [...splitBrain].sort(),
    last_heal: h.lastHeal && {
      kind: h.lastHeal.kind,
      started_at: h.lastHeal.startedAt,
      finished_at: h.lastHeal.finishedAt,
      error: h.lastHeal.error,
      entries_healed: h.lastHeal.stats?.['entries'] ?? null,
      bytes_copied: h.lastHeal.stats?.['bytes'] ?? null,
      split_brain_found: h.lastHeal.stats?.['splitBrain'] ?? null,
    },
    replicas: h.replicas.map((r) => ({
      brick_id: r.brick,
      address: r.address,
      connected: r.connected,
      pending_entries: r.count,
      entries: r.entries.map((e) => ({ path: e.path, split_brain: e.splitBrain, healing: e.healing })),
      // Snapshots this replica missed (copy) or must still delete, as snapshot heal sees them.
      pending_snapshots: (h.snapshots ?? [])
        .filter((s) => s.brick === r.brick)
        .map((s) => ({ snapshot_id: s.snapshot, action: s.action, healing: s.healing })),
    })),
  };
}

export const HealArg = z.union([
  z.null(),
  z.strictObject({ full: z.boolean().optional() }, { error: 'heal takes {"full": true|false}' }),
]);

export const HealResolveArg = z.strictObject({
  path: z
    .string()
    .max(4096)
    .refine((p) => !p.includes('\u0000'), 'must not contain NUL'),
  policy: z.enum(SPLIT_BRAIN_POLICIES, { error: `must be one of ${SPLIT_BRAIN_POLICIES.join(', ')}` }),
  source_brick: z.string().min(1).max(255).optional(),
});

/** GET /v2/shares/{id}/heal: the replicas' heal state (admin). The heal actions are in shares.ts. */
export function shareHealRouter(heal: ShareHealService, auth: Middleware): Router {
  const r = new Router({ prefix: '/v2/shares' });
  r.get('/:id/heal', auth, async (ctx) => {
    parse(z.strictObject({}), ctx.query, 'query');
    ctx.body = { share_heal: healView(await heal.info(ctx.state.auth, ctx.params.id!)) };
  });
  return r;
}
