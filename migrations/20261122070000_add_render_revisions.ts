import type { Knex } from 'knex';

/**
 * A revision on every share and share type, drawn from one sequence and renewed by triggers on
 * every change to the row or to what its views show from other tables (a share's metadata, a
 * type's extra specs). A page of shares reads (id, revision) and reuses the JSON it rendered
 * earlier for an unchanged revision; triggers rather than repository code renew it, so no write
 * path — now or later — can forget to. Revisions only grow, across every server on the database.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE SEQUENCE render_revisions');
  for (const table of ['shares', 'share_types'])
    await knex.raw(
      `ALTER TABLE ${table} ADD COLUMN revision bigint NOT NULL DEFAULT nextval('render_revisions')`,
    );
  await knex.raw(`
    CREATE FUNCTION renew_revision() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.revision := nextval('render_revisions');
      RETURN NEW;
    END $$`);
  // Renews the revision of the parent row (shares, share_types) a child row belongs to.
  for (const [fn, parent, key] of [
    ['renew_share_revision', 'shares', 'share_id'],
    ['renew_share_type_revision', 'share_types', 'share_type_id'],
  ])
    await knex.raw(`
      CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE ${parent} SET revision = nextval('render_revisions')
          WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.${key} ELSE NEW.${key} END;
        IF TG_OP = 'UPDATE' AND OLD.${key} <> NEW.${key} THEN
          UPDATE ${parent} SET revision = nextval('render_revisions') WHERE id = OLD.${key};
        END IF;
        RETURN NULL;
      END $$`);
  for (const table of ['shares', 'share_types'])
    await knex.raw(
      `CREATE TRIGGER ${table}_revision BEFORE UPDATE ON ${table}
         FOR EACH ROW EXECUTE FUNCTION renew_revision()`,
    );
  await knex.raw(
    `CREATE TRIGGER share_metadata_revision AFTER INSERT OR UPDATE OR DELETE ON share_metadata
       FOR EACH ROW EXECUTE FUNCTION renew_share_revision()`,
  );
  await knex.raw(
    `CREATE TRIGGER share_type_extra_specs_revision AFTER INSERT OR UPDATE OR DELETE ON share_type_extra_specs
       FOR EACH ROW EXECUTE FUNCTION renew_share_type_revision()`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS share_type_extra_specs_revision ON share_type_extra_specs');
  await knex.raw('DROP TRIGGER IF EXISTS share_metadata_revision ON share_metadata');
  for (const table of ['shares', 'share_types']) {
    await knex.raw(`DROP TRIGGER IF EXISTS ${table}_revision ON ${table}`);
    await knex.raw(`ALTER TABLE ${table} DROP COLUMN IF EXISTS revision`);
  }
  await knex.raw('DROP FUNCTION IF EXISTS renew_share_type_revision()');
  await knex.raw('DROP FUNCTION IF EXISTS renew_share_revision()');
  await knex.raw('DROP FUNCTION IF EXISTS renew_revision()');
  await knex.raw('DROP SEQUENCE IF EXISTS render_revisions');
}
