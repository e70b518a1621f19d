import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('share_types', (t) => {
    t.uuid('id').primary();
    t.text('name').notNullable().unique();
    t.text('description');
    t.boolean('is_public').notNullable().defaultTo(true);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
  });
  await knex.schema.createTable('share_type_extra_specs', (t) => {
    t.uuid('share_type_id').notNullable().references('share_types.id').onDelete('CASCADE');
    t.text('key').notNullable();
    t.text('value').notNullable();
    t.primary(['share_type_id', 'key']);
  });
  await knex.schema.createTable('share_type_projects', (t) => {
    t.uuid('share_type_id').notNullable().references('share_types.id').onDelete('CASCADE');
    // No foreign key: Manila keeps access entries for projects the identity service has forgotten.
    t.text('project_id').notNullable();
    t.primary(['share_type_id', 'project_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('share_type_projects');
  await knex.schema.dropTableIfExists('share_type_extra_specs');
  await knex.schema.dropTableIfExists('share_types');
}
