import { z } from 'zod';
import { InvalidInput } from '../services/errors.ts';
import { parseBool } from '../services/extra-specs.ts';
import { isUuid } from '../services/ids.ts';

/**
 * Parses input with a zod schema; a failure is a 400 naming each bad field and why. `root` names
 * the input in messages (an action's argument rather than the whole body).
 */
export function parse<S extends z.ZodType>(schema: S, input: unknown, root = 'body'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 5).map((i) => {
    const where = [root, ...i.path].join('.').replace(/^body\./, '');
    return `${where}: ${i.message}`;
  });
  throw new InvalidInput(`Invalid request: ${problems.join('; ')}.`);
}

/** A name as Keystone and Manila accept it: 1 to 255 characters, not only spaces. */
export const Name = z
  .string({ error: 'must be a string' })
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .refine((s) => s.trim().length > 0, 'must not be only spaces');

export const Description = z
  .string({ error: 'must be a string' })
  .max(1024, 'must be at most 1024 characters');

/** Query-string booleans as OpenStack clients send them. */
export const QueryBool = z
  .enum(['true', 'false', 'True', 'False', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => ['true', 'True', '1', 'yes'].includes(v));

/** Booleans in bodies: JSON booleans or the strings the clients send ("True", "false", …). */
export const Bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  try {
    return parseBool(v, 'value');
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be true or false' });
    return z.NEVER;
  }
});

const MAX_SIZE_GIB = 1_000_000;
/** A share size in GiB: a whole number ≥ 1 (the clients send numbers; some send strings). */
/** The body of an admin `reset_status` action (shares, snapshots, instances, share groups). */
export const ResetStatus = z.object({ status: z.string({ error: 'is required' }).min(1).max(64) });

export const Size = z
  .union([z.number(), z.string().regex(/^\d+$/, 'must be a whole number of GiB')], {
    error: 'must be a whole number of GiB',
  })
  .transform(Number)
  .pipe(
    z
      .number()
      .int('must be a whole number of GiB')
      .min(1, 'must be at least 1 GiB')
      .max(MAX_SIZE_GIB, `must be at most ${MAX_SIZE_GIB} GiB`),
  );

const MetaKey = z.string().min(1, 'keys must not be empty').max(255, 'keys must be at most 255 characters');
/** Manila's metadata: string keys and values of at most 255 characters. */
export const Metadata = z.record(
  MetaKey,
  z.string({ error: 'values must be strings' }).max(1023, 'values must be at most 1023 characters'),
  { error: 'must be an object of string keys and values' },
);

/** The message for input that is not an object at all; other problems keep zod's own message. */
export const objectLike = (example: string) => (issue: { code: string }) =>
  issue.code === 'invalid_type' ? `must be an object such as ${example}` : undefined;

/**
 * The one rule every string the API accepts obeys, whatever route it reaches: PostgreSQL cannot
 * store U+0000 in text (it answers "invalid byte sequence"), and a lone UTF-16 surrogate would be
 * stored as U+FFFD — a silent change of what the client sent. Returns what is wrong, or undefined.
 */
const LONE_SURROGATE = /\p{Cs}/u;

export function textProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'must not contain the character U+0000';
  if (LONE_SURROGATE.test(s)) return 'must be valid Unicode (a lone surrogate is not)';
  return undefined;
}

/** Deeper than any request body the APIs define (a Keystone auth body is 6 levels). */
export const MAX_DEPTH = 32;

/**
 * Checks every key and string value of a parsed JSON body or a query (arrays and nested objects
 * included, without recursion so a deep body cannot exhaust the stack); a failure is a 400 naming
 * where. `root` names the input in the message.
 */
export function checkInput(input: unknown, root: string): void {
  const stack: { value: unknown; where: string; depth: number }[] = [{ value: input, where: root, depth: 0 }];
  while (stack.length > 0) {
    const { value, where, depth } = stack.pop() as (typeof stack)[number];
    if (typeof value === 'string') {
      const problem = textProblem(value);
      if (problem) throw new InvalidInput(`Invalid request: ${where} ${problem}.`);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_DEPTH)
      throw new InvalidInput(`Invalid request: ${root} is nested deeper than ${MAX_DEPTH} levels.`);
    for (const [k, v] of Object.entries(value)) {
      const at = Array.isArray(value) ? `${where}[${k}]` : `${where}.${k}`;
      const problem = textProblem(k);
      if (problem) throw new InvalidInput(`Invalid request: a key in ${where} ${problem}.`);
      stack.push({ value: v, where: at, depth: depth + 1 });
    }
  }
}

/**
 * No row has the nil UUID: a filter on a UUID column whose value cannot be a UUID is given this
 * instead, so it matches nothing (Manila answers such a filter with an empty list) rather than
 * reaching the database as text it cannot cast.
 */
export const NO_ROW_UUID = '00000000-0000-0000-0000-000000000000';

/** A list filter on a UUID column (share_type_id, share_id, resource_id, export_location_id …). */
export const UuidFilter = z
  .string()
  .max(64)
  .transform((v) => (isUuid(v) ? v : NO_ROW_UUID));
