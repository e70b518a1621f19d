import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('availability_zones', (t) => {
    t.uuid('id').primary();
    t.text('name').notNullable().unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
  });
  await knex.schema.createTable('shares', (t) => {
    t.uuid('id').primary();
    t.text('project_id').notNullable();
    t.text('user_id').notNullable();
    t.text('name');
    t.text('description');
    t.integer('size').notNullable();
    t.text('share_proto').notNullable();
    t.text('status').notNullable();
    t.uuid('share_type_id').notNullable().references('share_types.id');
    t.text('availability_zone');
    t.boolean('is_public').notNullable().defaultTo(false);
    // backend@name#pool once scheduled, as Manila's host field.
    t.text('host');
    t.uuid('snapshot_id');
    t.text('access_rules_status').notNullable().defaultTo('active');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
    t.index(['project_id', 'created_at']);
    t.index(['status']);
  });
  await knex.schema.createTable('share_metadata', (t) => {
    t.uuid('share_id').notNullable().references('shares.id').onDelete('CASCADE');
    t.text('key').notNullable();
    t.text('value').notNullable();
    t.primary(['share_id', 'key']);
  });
  await knex.schema.createTable('share_export_locations', (t) => {
    t.uuid('id').primary();
    t.uuid('share_id').notNullable().references('shares.id').onDelete('CASCADE').index();
    t.text('path').notNullable();
    t.boolean('preferred').notNullable().defaultTo(false);
    t.boolean('is_admin_only').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('tasks', (t) => {
    t.bigIncrements('id').primary();
    t.text('kind').notNullable();
    t.uuid('resource_id').notNullable();
    t.jsonb('payload').notNullable().defaultTo('{}');
    // pending → running → done | failed; a running task whose lease expired is claimable again.
    t.text('state').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('claimed_by');
    t.timestamp('lease_until', { useTz: true });
    t.text('error');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
    t.index(['state', 'lease_until']);
    t.index(['resource_id']);
  });
  // Limits: a row per project (and optionally share type; '' = all types) and resource.
  await knex.schema.createTable('quotas', (t) => {
    t.text('project_id').notNullable();
    t.text('share_type_id').notNullable().defaultTo('');
    t.text('resource').notNullable();
    t.integer('hard_limit').notNullable();
    t.primary(['project_id', 'share_type_id', 'resource']);
  });
  await knex.schema.createTable('quota_usages', (t) => {
    t.text('project_id').notNullable();
    t.text('share_type_id').notNullable().defaultTo('');
    t.text('resource').notNullable();
    t.integer('in_use').notNullable().defaultTo(0);
    t.integer('reserved').notNullable().defaultTo(0);
    t.primary(['project_id', 'share_type_id', 'resource']);
  });
  await knex.schema.createTable('quota_reservations', (t) => {
    t.uuid('id').primary();
    t.bigInteger('task_id').references('tasks.id').onDelete('SET NULL');
    t.text('project_id').notNullable();
    t.text('share_type_id').notNullable().defaultTo('');
    t.text('resource').notNullable();
    t.integer('delta').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['task_id']);
  });
  await knex.schema.createTable('services', (t) => {
    t.increments('id').primary();
    t.text('binary').notNullable();
    t.text('host').notNullable();
    t.text('zone').notNullable();
    t.text('status').notNullable().defaultTo('enabled');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['binary', 'host']);
  });
  await knex.schema.createTable('messages', (t) => {
    t.uuid('id').primary();
    t.text('project_id').notNullable().index();
    t.text('resource_type').notNullable();
    t.uuid('resource_id');
    t.text('action_id').notNullable();
    t.text('detail_id').notNullable();
    t.text('message_level').notNullable();
    t.text('user_message').notNullable();
    t.text('request_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'messages',
    'services',
    'quota_reservations',
    'quota_usages',
    'quotas',
    'tasks',
    'share_export_locations',
    'share_metadata',
    'shares',
    'availability_zones',
  ])
    await knex.schema.dropTableIfExists(table);
}
