import type { Knex } from 'knex';

/**
 * Which share server owns each share of a replicated backend (backends/replicated/cluster.ts):
 * decided once for the cluster by a compare-and-set on `generation`, whichever API process's
 * cluster monitor sees the owner fail first.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('share_owners', (t) => {
    t.text('backend').notNullable();
    t.text('share_id').notNullable();
    /** The owning share server's admin address, as configured (`host:port`). */
    t.text('server').notNullable();
    t.integer('generation').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.primary(['backend', 'share_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('share_owners');
}
