import type { Knex } from 'knex';

/**
 * Per-user usage for what existed before user quotas: each user's shares and snapshots counted
 * from the tables (data only; the schema change is the migration before). Reservations in flight
 * have no user part and are committed or returned at project level, as they were made.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    INSERT INTO quota_usages (project_id, user_id, share_type_id, resource, in_use)
    SELECT project_id, user_id, '', 'shares', count(*) FROM shares GROUP BY project_id, user_id
    UNION ALL
    SELECT project_id, user_id, '', 'gigabytes', sum(size) FROM shares GROUP BY project_id, user_id
    UNION ALL
    SELECT project_id, user_id, '', 'snapshots', count(*) FROM share_snapshots GROUP BY project_id, user_id
    UNION ALL
    SELECT project_id, user_id, '', 'snapshot_gigabytes', sum(size) FROM share_snapshots GROUP BY project_id, user_id
    ON CONFLICT DO NOTHING`);
}

export async function down(knex: Knex): Promise<void> {
  await knex('quota_usages').whereNot('user_id', '').delete();
}
