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

/** The size range a type allows its shares (Manila 2.61), in GiB, on create, extend and shrink. */
export const MIN_SIZE_SPEC = 'provisioning:min_share_size';
export const MAX_SIZE_SPEC = 'provisioning:max_share_size';
const SIZE_SPECS: readonly string[] = [MIN_SIZE_SPEC, MAX_SIZE_SPEC];

/** The specs a non-admin may see (manila/common/constants.py ExtraSpecs.TENANT_VISIBLE). */
export const TENANT_VISIBLE_SPECS: readonly string[] = [
  ...BOOLEAN_SPECS,
  'replication_type',
  'availability_zones',
];

const TRUE = new Set(['true', 't', 'yes', 'y', 'on', '1']);
const FALSE = new Set(['false', 'f', 'no', 'n', 'off', '0']);

/** The share type spec naming the availability zones its shares may be placed in (Manila 2.48). */
export const AZ_SPEC = 'availability_zones';

/** The zones of an `availability_zones` spec value (comma-separated, blanks around names dropped). */
export function typeZones(value: string): string[] {
  return value
    .split(',')
    .map((z) => z.trim())
    .filter(Boolean);
}

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
    if (SIZE_SPECS.includes(key) && !/^[1-9]\d{0,8}$/.test(out[key] as string))
      throw new InvalidInput(
        `Extra spec ${key} must be a whole number of GiB (1 or more), not ${JSON.stringify(value)}.`,
      );
    // Manila's sanitize_csv: the zones list is stored without blanks around its commas, and an
    // empty entry (",," or a comma at either end) is refused.
    if (key === AZ_SPEC) {
      const zones = (out[key] as string).split(',').map((z) => z.trim());
      if (zones.some((z) => z === ''))
        throw new InvalidInput(
          `Extra spec ${AZ_SPEC} must be a comma-separated list of availability zone names, without empty entries: ${JSON.stringify(value)}.`,
        );
      out[key] = zones.join(',');
    }
    const driverError = driverSpecError(key, out[key] as string);
    if (driverError) throw new InvalidInput(driverError);
  }
  const min = out[MIN_SIZE_SPEC];
  const max = out[MAX_SIZE_SPEC];
  if (min !== undefined && max !== undefined && Number(min) > Number(max))
    throw new InvalidInput(`Extra spec ${MIN_SIZE_SPEC} (${min}) must not exceed ${MAX_SIZE_SPEC} (${max}).`);
  return out;
}

/**
 * Manila's provision_filter_on_size: a share of `size` GiB (new, or the new size of an extend or
 * shrink) must lie within its type's provisioning:min_share_size and max_share_size (400).
 */
export function checkSizeSpecs(specs: Record<string, string>, typeName: string, size: number): void {
  const min = specs[MIN_SIZE_SPEC];
  if (min !== undefined && size < Number(min))
    throw new InvalidInput(
      `Specified share size of '${size}' is less than the minimum required size of '${min}' for share type '${typeName}'.`,
    );
  const max = specs[MAX_SIZE_SPEC];
  if (max !== undefined && size > Number(max))
    throw new InvalidInput(
      `Specified share size of '${size}' is greater than the maximum allowable size of '${max}' for share type '${typeName}'.`,
    );
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
  // Manila's INFERRED_OPTIONAL_MAP: a capability the type does not ask for is one it lacks.
  out.snapshot_support ??= 'False';
  out.create_share_from_snapshot_support ??= 'False';
  out.revert_to_snapshot_support ??= 'False';
  out.mount_snapshot_support ??= 'False';
  return out;
}
