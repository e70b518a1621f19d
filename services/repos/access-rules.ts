import type { Knex } from 'knex';
import type { Executor, Trx } from '../db.ts';
import type { Auth } from '../policy.ts';
import { findInReach, withinReach } from './reach.ts';

export interface AccessRuleRow {
  id: string;
  share_id: string;
  access_type: string;
  access_to: string;
  access_level: string;
  state: string;
  access_key: string | null;
  created_at: Date;
  updated_at: Date | null;
}

/** A rule with its metadata, as the views need it. */
export interface AccessRule extends AccessRuleRow {
  metadata: Record<string, string>;
}

const withMetadata = (ex: Executor) =>
  ex('share_access_rules').select(
    'share_access_rules.*',
    ex.raw(
      `COALESCE((SELECT json_object_agg(key, value) FROM share_access_rule_metadata m
                  WHERE m.access_id = share_access_rules.id), '{}'::json) AS metadata`,
    ),
  );

/** The rule `id` if it is on a share the caller may change (a rule belongs to its share's project). */
const ownedRule = (ex: Executor, auth: Auth, id: string): Knex.QueryBuilder =>
  withMetadata(ex)
    .where('share_access_rules.id', id)
    .whereExists(
      withinReach(ex('shares').whereRaw('shares.id = share_access_rules.share_id'), 'shares', auth, 'change'),
    );

export const accessRulesRepo = {
  async insert(ex: Executor, row: Omit<AccessRuleRow, 'created_at' | 'updated_at'>): Promise<AccessRuleRow> {
    const [created] = await ex('share_access_rules').insert(row).returning('*');
    return created as AccessRuleRow;
  },
  async get(ex: Executor, id: string): Promise<AccessRule | undefined> {
    return withMetadata(ex).where('share_access_rules.id', id).first();
  },
  /** The rule if it is on a share the caller may change, else NotFound. */
  async owned(ex: Executor, auth: Auth, id: string): Promise<AccessRule> {
    return findInReach<AccessRule>(ownedRule(ex, auth, id), 'Access rule', id, false);
  },
  /** As owned, and the rule locked until `trx` ends, in one statement. */
  async lockOwned(trx: Trx, auth: Auth, id: string): Promise<AccessRule> {
    return findInReach<AccessRule>(ownedRule(trx, auth, id), 'Access rule', id, true);
  },
  /** A share's rules, oldest first; optionally only those whose metadata holds every given pair. */
  async forShare(
    ex: Executor,
    shareId: string,
    metadata: Record<string, string> = {},
  ): Promise<AccessRule[]> {
    const b = withMetadata(ex).where('share_access_rules.share_id', shareId);
    for (const [key, value] of Object.entries(metadata))
      b.whereExists(
        ex('share_access_rule_metadata')
          .whereRaw('share_access_rule_metadata.access_id = share_access_rules.id')
          .where({ key, value }),
      );
    return b.orderBy([{ column: 'created_at' }, { column: 'id' }]);
  },
  async findSame(
    ex: Executor,
    shareId: string,
    accessType: string,
    accessTo: string,
  ): Promise<AccessRuleRow | undefined> {
    return ex('share_access_rules')
      .where({ share_id: shareId, access_type: accessType, access_to: accessTo })
      .first();
  },
  /** Moves every rule of the share in state `from` to `to`. */
  async moveStates(ex: Executor, shareId: string, from: string, to: string): Promise<void> {
    await ex('share_access_rules')
      .where({ share_id: shareId, state: from })
      .update({ state: to, updated_at: ex.fn.now() });
  },
  async setState(ex: Executor, id: string, state: string): Promise<void> {
    await ex('share_access_rules').where({ id }).update({ state, updated_at: ex.fn.now() });
  },
  async remove(ex: Executor, id: string): Promise<boolean> {
    return (await ex('share_access_rules').where({ id }).delete().returning('id')).length > 0;
  },
  async setMetadata(ex: Executor, accessId: string, metadata: Record<string, string>): Promise<void> {
    const rows = Object.entries(metadata).map(([key, value]) => ({ access_id: accessId, key, value }));
    if (rows.length)
      await ex('share_access_rule_metadata').insert(rows).onConflict(['access_id', 'key']).merge(['value']);
  },
  async deleteMetadata(ex: Executor, accessId: string, key: string): Promise<boolean> {
    return (
      (await ex('share_access_rule_metadata').where({ access_id: accessId, key }).delete().returning('key'))
        .length > 0
    );
  },
};
