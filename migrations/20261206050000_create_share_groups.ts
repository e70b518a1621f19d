import type { Knex } from 'knex';

/**
 * Share groups and share group snapshots (Manila 2.31+). A group has a group type, the share types
 * its shares may have, a host and a zone once placed; a share belongs to at most one group. A group
 * snapshot's members are snapshots of the group's shares (rows of share_snapshots with
 * share_group_snapshot_id set), taken and removed through the same backend calls as any snapshot;
 * the snapshot API does not list them, as Manila's does not. Foreign keys keep a group with shares
 * or snapshots, a group type with groups, and a share type a group holds, from being deleted.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('share_groups', (t) => {
    t.uuid('id').primary();
    t.text('project_id').notNullable();
    t.text('user_id').notNullable();
    t.text('name');
    t.text('description');
    t.text('status').notNullable();
    t.uuid('share_group_type_id').notNullable().references('share_group_types.id').onDelete('RESTRICT');
    t.text('host');
    t.text('availability_zone');
    // The group snapshot it was made from; no foreign key: the snapshot may be deleted afterwards.
    t.uuid('source_share_group_snapshot_id');
    t.text('consistent_snapshot_support');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
    t.index(['project_id', 'created_at']);
  });
  await knex.schema.createTable('share_group_share_types', (t) => {
    t.uuid('share_group_id').notNullable().references('share_groups.id').onDelete('CASCADE');
    t.uuid('share_type_id').notNullable().references('share_types.id').onDelete('RESTRICT');
    t.primary(['share_group_id', 'share_type_id']);
    t.index(['share_type_id']);
  });
  await knex.schema.createTable('share_group_snapshots', (t) => {
    t.uuid('id').primary();
    t.text('project_id').notNullable();
    t.text('user_id').notNullable();
    t.uuid('share_group_id').notNullable().references('share_groups.id').onDelete('RESTRICT');
    t.text('name');
    t.text('description');
    t.text('status').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true });
    t.index(['project_id', 'created_at']);
    t.index(['share_group_id']);
  });
  await knex.schema.alterTable('shares', (t) => {
    t.uuid('share_group_id').references('share_groups.id').onDelete('RESTRICT');
    // The group snapshot member the share was made from; shares.snapshot_id names the same snapshot.
    t.uuid('source_share_group_snapshot_member_id');
    t.index(['share_group_id']);
  });
  await knex.schema.alterTable('share_snapshots', (t) => {
    t.uuid('share_group_snapshot_id').references('share_group_snapshots.id').onDelete('RESTRICT');
    t.index(['share_group_snapshot_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('share_snapshots', (t) => {
    t.dropColumn('share_group_snapshot_id');
  });
  await knex.schema.alterTable('shares', (t) => {
    t.dropColumn('source_share_group_snapshot_member_id');
    t.dropColumn('share_group_id');
  });
  await knex.schema.dropTableIfExists('share_group_snapshots');
  await knex.schema.dropTableIfExists('share_group_share_types');
  await knex.schema.dropTableIfExists('share_groups');
}
