import { z } from 'zod';
import { InvalidInput } from '../services/errors.ts';

/** Parses input with a zod schema; a failure is a 400 naming each bad field and why. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 5).map((i) => {
    const where = i.path.length ? i.path.join('.') : 'body';
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
