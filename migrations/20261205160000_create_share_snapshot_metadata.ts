import type { Knex } from 'knex';

/** Snapshot metadata (Manila 2.73): key/value pairs per snapshot, as share_metadata is per share. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('share_snapshot_metadata', (t) => {
    t.uuid('snapshot_id').notNullable().references('share_snapshots.id').onDelete('CASCADE');
    t.text('key').notNullable();
    t.text('value').notNullable();
    t.primary(['snapshot_id', 'key']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('share_snapshot_metadata');
}
