import type { Knex } from 'knex';

/**
 * The bricks an operator added, replaced or drained, per backend (services/repos/bricks.ts): the
 * share servers know only the bricks they were started with, so the registry lives here and the
 * driver tells a restarted share server again, resuming a drain or a replace left unfinished.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('backend_bricks', (t) => {
    t.text('backend').notNullable();
    t.text('address').notNullable();
    t.text('brick_id');
    t.text('state').notNullable();
    t.text('replaced_by');
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.primary(['backend', 'address']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('backend_bricks');
}
