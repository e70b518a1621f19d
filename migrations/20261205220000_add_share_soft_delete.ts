import type { Knex } from 'knex';

/**
 * The recycle bin (Manila's soft delete, 2.69): a soft-deleted share keeps its row, its storage and
 * its quota until it is restored, deleted, or purged once `scheduled_to_be_deleted_at` has passed.
 * The partial index serves the purge's scan for expired shares.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('shares', (t) => {
    t.boolean('is_soft_deleted').notNullable().defaultTo(false);
    t.timestamp('scheduled_to_be_deleted_at', { useTz: true });
  });
  await knex.raw(
    'CREATE INDEX shares_recycle_bin_idx ON shares (scheduled_to_be_deleted_at) WHERE is_soft_deleted',
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS shares_recycle_bin_idx');
  await knex.schema.alterTable('shares', (t) => {
    t.dropColumn('scheduled_to_be_deleted_at');
    t.dropColumn('is_soft_deleted');
  });
}
