import { driverSpecError } from '../backends/drivers.ts';
import { InvalidInput } from './errors.ts';

/** Extra specs whose values are booleans; stored and returned as "True"/"False", like Manila. */
export const BOOLEAN_SPECS = [
  'driver_handles_share_servers',
  'snapshot_support',
  'create_share_from_snapshot_support',
  'revert_to_snapshot_support',
  'mount_snapshot_support',
] as const;

export const REQUIRED_SPECS = ['driver_handles_share_servers'] as const;

/** The specs a non-admin may see (manila/common/constants.py ExtraSpecs.TENANT_VISIBLE). */
export const TENANT_VISIBLE_SPECS: readonly string[] = [
  ...BOOLEAN_SPECS,
  'replication_type',
  'availability_zones',
];

const TRUE = new Set(['true', 't', 'yes', 'y', 'on', '1']);
const FALSE = new Set(['false', 'f', 'no', 'n', 'off', '0']);

/** oslo's strict bool_from_string: anything that is not clearly true or false is an error. */
export function parseBool(value: unknown, what: string): boolean {
  if (typeof value === 'boolean') return value;
  const s = String(value).trim().toLowerCase();
  if (TRUE.has(s)) return true;
  if (FALSE.has(s)) return false;
  throw new InvalidInput(`${what} must be a boolean ('True' or 'False'), not ${JSON.stringify(value)}.`);
}

export function boolSpec(specs: Record<string, string>, key: string): boolean | undefined {
  const v = specs[key];
  return v === undefined ? undefined : TRUE.has(v.toLowerCase());
}

/**
 * Validates extra specs as a client sent them (strings, or booleans for the boolean specs) and
 * returns them as stored: every value a string, booleans as "True"/"False".
 */
export function normalizeSpecs(input: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(input)) {
    if (key.length < 1 || key.length > 255)
      throw new InvalidInput(`Extra spec key '${key.slice(0, 40)}…' must be 1 to 255 characters.`);
    if ((BOOLEAN_SPECS as readonly string[]).includes(key)) {
      out[key] = parseBool(value, `Extra spec ${key}`) ? 'True' : 'False';
      continue;
    }
    if (typeof value === 'boolean') out[key] = value ? 'True' : 'False';
    else if (typeof value === 'string' || typeof value === 'number') out[key] = String(value);
    else
      throw new InvalidInput(
        `Extra spec ${key} must be a string, not ${value === null ? 'null' : typeof value}.`,
      );
    if ((out[key] as string).length > 255)
      throw new InvalidInput(`Extra spec ${key} must be at most 255 characters.`);
    const driverError = driverSpecError(key, out[key] as string);
    if (driverError) throw new InvalidInput(driverError);
  }
  return out;
}

/**
 * What a non-admin sees: the tenant-visible specs, with (from microversion 2.24, `inferFlags`) the
 * capability flags Manila infers when a type leaves them out (manila/api/views/types.py).
 */
export function tenantVisibleSpecs(
  specs: Record<string, string>,
  { inferFlags = true }: { inferFlags?: boolean } = {},
): Record<string, string> {
  const out = Object.fromEntries(Object.entries(specs).filter(([k]) => TENANT_VISIBLE_SPECS.includes(k)));
  if (!inferFlags) return out;
  if (out.snapshot_support !== undefined && out.create_share_from_snapshot_support === undefined)
    out.create_share_from_snapshot_support = out.snapshot_support;
  out.revert_to_snapshot_support ??= 'False';
  out.mount_snapshot_support ??= 'False';
  return out;
}
