import type { Knex } from 'knex';

/**
 * Lists are ordered by (created_at, id) within a project by default; with id in the index the
 * page is read in order from it, without sorting the project's rows first. The new index covers
 * what the (project_id, created_at) one served.
 */
export async function up(knex: Knex): Promise<void> {
  for (const table of ['shares', 'share_snapshots'])
    await knex.schema.alterTable(table, (t) => {
      t.index(['project_id', 'created_at', 'id']);
      t.dropIndex(['project_id', 'created_at']);
    });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['shares', 'share_snapshots'])
    await knex.schema.alterTable(table, (t) => {
      t.index(['project_id', 'created_at']);
      t.dropIndex(['project_id', 'created_at', 'id']);
    });
}
