import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('domains', (t) => {
    t.text('id').primary();
    t.text('name').notNullable().unique();
    t.text('description').notNullable().defaultTo('');
    t.boolean('enabled').notNullable().defaultTo(true);
    t.jsonb('extra').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('projects', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('domain_id').notNullable().references('domains.id');
    t.text('description').notNullable().defaultTo('');
    t.boolean('enabled').notNullable().defaultTo(true);
    t.jsonb('tags').notNullable().defaultTo('[]');
    t.jsonb('options').notNullable().defaultTo('{}');
    t.jsonb('extra').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['domain_id', 'name']);
  });
  await knex.schema.createTable('users', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('domain_id').notNullable().references('domains.id');
    t.text('password_hash');
    t.boolean('enabled').notNullable().defaultTo(true);
    // Keystone keeps no foreign key here: a deleted project leaves a dangling default.
    t.text('default_project_id');
    t.jsonb('options').notNullable().defaultTo('{}');
    t.jsonb('extra').notNullable().defaultTo('{}');
    t.timestamp('password_changed_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['domain_id', 'name']);
  });
  await knex.schema.createTable('roles', (t) => {
    t.text('id').primary();
    t.text('name').notNullable().unique();
    t.text('description').notNullable().defaultTo('');
    t.jsonb('options').notNullable().defaultTo('{}');
    t.jsonb('extra').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('implied_roles', (t) => {
    t.text('prior_role_id').notNullable().references('roles.id').onDelete('CASCADE');
    t.text('implied_role_id').notNullable().references('roles.id').onDelete('CASCADE');
    t.primary(['prior_role_id', 'implied_role_id']);
  });
  await knex.schema.createTable('role_assignments', (t) => {
    t.text('type').notNullable(); // UserProject | UserDomain
    t.text('actor_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('target_id').notNullable();
    t.text('role_id').notNullable().references('roles.id').onDelete('CASCADE');
    t.primary(['type', 'actor_id', 'target_id', 'role_id']);
    t.index(['target_id']);
  });
  await knex.schema.createTable('application_credentials', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('secret_hash').notNullable();
    t.text('description').notNullable().defaultTo('');
    t.timestamp('expires_at', { useTz: true });
    t.boolean('unrestricted').notNullable().defaultTo(false);
    t.jsonb('role_ids').notNullable().defaultTo('[]');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['user_id', 'name']);
  });
  await knex.schema.createTable('signing_keys', (t) => {
    t.text('id').primary();
    t.text('private_key').notNullable();
    t.text('public_key').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('retired_at', { useTz: true });
  });
  await knex.schema.createTable('revocation_events', (t) => {
    t.increments('id').primary();
    t.text('audit_id');
    t.text('user_id');
    t.text('project_id');
    // Tokens issued at or before this instant that match the other columns are revoked.
    t.timestamp('issued_before', { useTz: true }).notNullable();
    // After this no token the event could match is still valid, so it can be purged.
    t.timestamp('expires_at', { useTz: true }).notNullable().index();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'revocation_events',
    'signing_keys',
    'application_credentials',
    'role_assignments',
    'implied_roles',
    'roles',
    'users',
    'projects',
    'domains',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
