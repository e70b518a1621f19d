import type { Knex } from 'knex';

/**
 * Share servers of a replicated backend that an operator disabled (`PUT /v2/services/disable`):
 * the cluster monitor places nothing on them and hands their shares to the others. A row exists
 * while the server is disabled.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('share_server_states', (t) => {
    t.text('backend').notNullable();
    /** The share server's admin address, as configured (`host:port`). */
    t.text('server').notNullable();
    t.text('disabled_reason').nullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.primary(['backend', 'server']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('share_server_states');
}
