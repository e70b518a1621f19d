import type { Knex } from 'knex';

/**
 * Share group types (Manila 2.31+): a name, the share types a group of the type may hold, group
 * specs, and project access for private ones. A share type that a group type names cannot be
 * deleted (Manila's ShareTypeInUse): the foreign key keeps that true whatever the service checks.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('share_group_types', (t) => {
    t.uuid('id').primary();
    t.text('name').notNullable().unique();
    t.boolean('is_public').notNullable().defaultTo(true);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
  });
  await knex.schema.createTable('share_group_type_specs', (t) => {
    t.uuid('share_group_type_id').notNullable().references('share_group_types.id').onDelete('CASCADE');
    t.text('key').notNullable();
    t.text('value').notNullable();
    t.primary(['share_group_type_id', 'key']);
  });
  await knex.schema.createTable('share_group_type_share_types', (t) => {
    t.uuid('share_group_type_id').notNullable().references('share_group_types.id').onDelete('CASCADE');
    t.uuid('share_type_id').notNullable().references('share_types.id').onDelete('RESTRICT');
    t.primary(['share_group_type_id', 'share_type_id']);
    t.index(['share_type_id']);
  });
  await knex.schema.createTable('share_group_type_projects', (t) => {
    t.uuid('share_group_type_id').notNullable().references('share_group_types.id').onDelete('CASCADE');
    // No foreign key, as for share types: access entries may outlive the project.
    t.text('project_id').notNullable();
    t.primary(['share_group_type_id', 'project_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('share_group_type_projects');
  await knex.schema.dropTableIfExists('share_group_type_share_types');
  await knex.schema.dropTableIfExists('share_group_type_specs');
  await knex.schema.dropTableIfExists('share_group_types');
}
