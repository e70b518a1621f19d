import { ApiError, Conflict, InvalidInput } from '../errors.ts';

interface PgError {
  code?: string;
  constraint?: string;
  detail?: string;
}

/**
 * Translates PostgreSQL error codes into typed errors so callers never see a raw driver error:
 * unique violation → 409, foreign key violation → 400. `what` names the thing for the message.
 */
export function translatePgError(err: unknown, what: string): never {
  if (err instanceof ApiError) throw err;
  const e = err as PgError;
  if (e?.code === '23505') throw new Conflict(`${what} already exists${detail(e)}.`);
  if (e?.code === '23503')
    throw new InvalidInput(`${what} refers to something that does not exist${detail(e)}.`);
  if (e?.code === '22001') throw new InvalidInput(`A value for ${what} is too long.`);
  throw err;
}

function detail(e: PgError): string {
  const m = e.detail ? /Key \((.+?)\)=\((.*?)\)/.exec(e.detail) : null;
  return m ? ` (${m[1]} = ${m[2]})` : '';
}

/** Runs a repository write and translates its pg errors. */
export async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    translatePgError(err, what);
  }
}
