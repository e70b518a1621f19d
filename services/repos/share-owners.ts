import type { ShareOwner, ShareOwnerStore } from '../../backends/replicated/cluster.ts';
import type { Executor } from '../db.ts';

interface ShareOwnerRow {
  backend: string;
  share_id: string;
  server: string;
  generation: number;
  updated_at: Date;
}

/** A share server an operator disabled (a row exists only while it is disabled). */
interface ShareServerStateRow {
  backend: string;
  server: string;
  disabled_reason: string | null;
  updated_at: Date;
}

const toOwner = (r: ShareOwnerRow): ShareOwner => ({
  share: r.share_id,
  server: r.server,
  generation: Number(r.generation),
});

/**
 * The owners of one replicated backend's shares, for its cluster monitor. Every change is one
 * statement: a claim inserts unless a row exists, a move updates only the generation it read, so
 * two API processes deciding at once leave exactly one decision.
 */
export function shareOwnerStore(db: Executor, backend: string): ShareOwnerStore {
  const table = () => db<ShareOwnerRow>('share_owners');
  return {
    async list() {
      const rows: ShareOwnerRow[] = await table().where({ backend }).orderBy('share_id');
      return rows.map(toOwner);
    },
    async get(share) {
      const row: ShareOwnerRow | undefined = await table().where({ backend, share_id: share }).first();
      return row ? toOwner(row) : undefined;
    },
    async claim(share, server) {
      await table()
        .insert({ backend, share_id: share, server, generation: 1, updated_at: new Date() })
        .onConflict(['backend', 'share_id'])
        .ignore();
      const row = (await table().where({ backend, share_id: share }).first()) as ShareOwnerRow;
      return toOwner(row);
    },
    async move(share, generation, server) {
      const n = await table()
        .where({ backend, share_id: share, generation })
        .update({ server, generation: generation + 1, updated_at: new Date() });
      return n === 1;
    },
    async forget(share) {
      await table().where({ backend, share_id: share }).delete();
    },
    async disabled() {
      const rows: ShareServerStateRow[] = await db<ShareServerStateRow>('share_server_states').where({
        backend,
      });
      return new Map(rows.map((r) => [r.server, r.disabled_reason]));
    },
    async setDisabled(server, disabled, reason) {
      const states = () => db<ShareServerStateRow>('share_server_states');
      if (!disabled) await states().where({ backend, server }).delete();
      else
        await states()
          .insert({ backend, server, disabled_reason: reason, updated_at: new Date() })
          .onConflict(['backend', 'server'])
          .merge(['disabled_reason', 'updated_at']);
    },
  };
}
