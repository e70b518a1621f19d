import type { Executor } from '../db.ts';

/**
 * The key/value metadata of one kind of resource, kept in `table` with the owner's id in `column`
 * (share_metadata.share_id, share_snapshot_metadata.snapshot_id): one implementation for every
 * resource with Manila's metadata API.
 */
export function metadataTable(table: string, column: string) {
  return {
    /** A SELECT column for rows of the owner's table `owner`: their metadata as an object ({} if none). */
    selectFor: (owner: string) =>
      `COALESCE((SELECT json_object_agg(m.key, m.value) FROM ${table} m WHERE m.${column} = ${owner}.id), '{}'::json) AS metadata`,
    /** Sets the keys given, keeping the others. */
    async set(ex: Executor, id: string, metadata: Record<string, string>): Promise<void> {
      const rows = Object.entries(metadata).map(([key, value]) => ({ [column]: id, key, value }));
      if (rows.length) await ex(table).insert(rows).onConflict([column, 'key']).merge(['value']);
    },
    async clear(ex: Executor, id: string): Promise<void> {
      await ex(table).where(column, id).delete();
    },
    async remove(ex: Executor, id: string, key: string): Promise<void> {
      await ex(table)
        .where({ [column]: id, key })
        .delete();
    },
  };
}
