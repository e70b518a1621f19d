import type { Knex } from 'knex';

/**
 * A share's task_state (Manila's, shown from 2.5): the state of a long task such as a migration.
 * abaca runs no such task; an admin sets it with the reset_task_state action (2.22), as in Manila.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('shares', (t) => {
    t.text('task_state');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('shares', (t) => {
    t.dropColumn('task_state');
  });
}
