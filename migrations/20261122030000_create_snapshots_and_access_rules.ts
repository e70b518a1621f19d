import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('share_snapshots', (t) => {
    t.uuid('id').primary();
    // No cascade: a share with snapshots cannot be deleted (the API answers 409 first).
    t.uuid('share_id').notNullable().references('shares.id');
    t.text('project_id').notNullable();
    t.text('user_id').notNullable();
    t.text('name');
    t.text('description');
    // GiB of the share when the snapshot was taken (Manila's size and share_size).
    t.integer('size').notNullable();
    t.text('share_proto').notNullable();
    t.text('status').notNullable();
    t.text('provider_location');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
    t.index(['share_id', 'created_at']);
    t.index(['project_id', 'created_at']);
  });
  await knex.schema.createTable('share_access_rules', (t) => {
    t.uuid('id').primary();
    t.uuid('share_id').notNullable().references('shares.id').onDelete('CASCADE').index();
    t.text('access_type').notNullable();
    t.text('access_to').notNullable();
    t.text('access_level').notNullable();
    // queued_to_apply → applying → active | error; queued_to_deny → denying → row deleted.
    t.text('state').notNullable();
    t.text('access_key');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
    // One rule per client per share, whatever its level (Manila refuses duplicates).
    t.unique(['share_id', 'access_type', 'access_to']);
  });
  await knex.schema.createTable('share_access_rule_metadata', (t) => {
    t.uuid('access_id').notNullable().references('share_access_rules.id').onDelete('CASCADE');
    t.text('key').notNullable();
    t.text('value').notNullable();
    t.primary(['access_id', 'key']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('share_access_rule_metadata');
  await knex.schema.dropTableIfExists('share_access_rules');
  await knex.schema.dropTableIfExists('share_snapshots');
}
