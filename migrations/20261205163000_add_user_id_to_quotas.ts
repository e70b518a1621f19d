import type { Knex } from 'knex';

/**
 * User quotas (Manila's quota-sets with user_id): limits, usage and reservations get a user
 * scope. '' is no user — the project's (or a share type's) own row, as share_type_id '' is the
 * project-wide one — so every existing row keeps its meaning.
 */
export async function up(knex: Knex): Promise<void> {
  for (const table of ['quotas', 'quota_usages']) {
    await knex.schema.alterTable(table, (t) => {
      t.text('user_id').notNullable().defaultTo('');
      t.dropPrimary();
    });
    await knex.schema.alterTable(table, (t) => {
      t.primary(['project_id', 'user_id', 'share_type_id', 'resource']);
    });
  }
  await knex.schema.alterTable('quota_reservations', (t) => {
    t.text('user_id').notNullable().defaultTo('');
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['quotas', 'quota_usages']) {
    await knex(table).whereNot('user_id', '').delete();
    await knex.schema.alterTable(table, (t) => {
      t.dropPrimary();
      t.dropColumn('user_id');
    });
    await knex.schema.alterTable(table, (t) => {
      t.primary(['project_id', 'share_type_id', 'resource']);
    });
  }
  await knex.schema.alterTable('quota_reservations', (t) => {
    t.dropColumn('user_id');
  });
}
