import type { Knex } from 'knex';
import { NotFound } from '../errors.ts';
import { isUuid } from '../ids.ts';
import type { Auth } from '../policy.ts';

/**
 * Which of a project's rows a caller reaches: `change` — their own project's, or every project's
 * for an admin; `see` — those and, in a table with `is_public` (shares), other projects' public
 * rows. A row out of reach is absent, not forbidden: Manila answers 404, never 403, for another
 * project's private resource. This is the one place the rule is written.
 */
export type Reach = 'change' | 'see';

/** Narrows `b` to the rows of `table` (which has `project_id`) the caller reaches. */
export function withinReach(
  b: Knex.QueryBuilder,
  table: string,
  auth: Auth,
  reach: Reach,
): Knex.QueryBuilder {
  if (auth.isAdmin) return b;
  const projectId = auth.projectId;
  // An unscoped token owns no project's rows (policy refuses it earlier; this keeps it so).
  if (projectId === null) return b.whereRaw('false');
  if (reach === 'see' && table === 'shares')
    return b.where((w) => w.where('shares.project_id', projectId).orWhere('shares.is_public', true));
  return b.where(`${table}.project_id`, projectId);
}

/**
 * The row `id` of `b` (a query for that id, narrowed with withinReach), or NotFound with Manila's
 * message — whether the row never existed, was deleted a moment ago, or is another project's.
 * With `lock` (inside a transaction) the row is locked FOR UPDATE until the transaction ends:
 * checking and locking in one statement leaves no moment in which a concurrent delete could slip
 * between them.
 */
export async function findInReach<Row>(
  b: Knex.QueryBuilder,
  what: string,
  id: string,
  lock: boolean,
): Promise<Row> {
  // Not an id at all: it names nothing (and must not reach a uuid column).
  const row = isUuid(id) ? await (lock ? b.forUpdate() : b).first() : undefined;
  if (!row) throw new NotFound(`${what} ${id} could not be found.`);
  return row as Row;
}
