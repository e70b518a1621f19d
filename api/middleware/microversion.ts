import type { Middleware } from 'koa';
import { InvalidInput, NotAcceptable, NotFound } from '../../services/errors.ts';

export const MIN_VERSION = '2.0';
/** Manila zed's maximum (2.73, snapshot metadata); `openstack share` always sends 2.72 without negotiating. */
export const MAX_VERSION = '2.73';

export interface Microversion {
  major: number;
  minor: number;
}

export function parseVersion(v: string): Microversion | null {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

const MIN = parseVersion(MIN_VERSION) as Microversion;
const MAX = parseVersion(MAX_VERSION) as Microversion;

export function compare(a: Microversion, b: Microversion): number {
  return a.major - b.major || a.minor - b.minor;
}

/** The versions views compare against, parsed once: views ask for each item of a list page. */
const thresholds = new Map<string, Microversion>();

/** True when the request's microversion is at least `v` (e.g. `atLeast(ctx, '2.54')`). */
export function atLeast(version: Microversion, v: string): boolean {
  let threshold = thresholds.get(v);
  if (!threshold) {
    threshold = parseVersion(v) as Microversion;
    thresholds.set(v, threshold);
  }
  return compare(version, threshold) >= 0;
}

const HEADER = 'X-OpenStack-Manila-API-Version';

/**
 * Reads the microversion (Manila's header, any case, or the API-SIG form
 * `OpenStack-API-Version: shared-file-system 2.x`), puts it in ctx.state.microversion and echoes it
 * with Vary on every response, errors included. Absent → 2.0; `latest` → the maximum; malformed →
 * 400; outside 2.0 … max → 406.
 */
export function microversion(): Middleware {
  return async (ctx, next) => {
    const sig = /(?:^|,)\s*(?:shared-file-system|share)\s+(\S+)/i.exec(ctx.get('openstack-api-version'));
    const raw = ctx.get(HEADER) || sig?.[1] || '';
    let version: Microversion = MIN;
    ctx.set('Vary', HEADER);
    ctx.set(HEADER, MIN_VERSION);
    if (raw) {
      const parsed = raw.toLowerCase() === 'latest' ? MAX : parseVersion(raw);
      if (!parsed)
        throw new InvalidInput(`Invalid API version '${raw}': expected MAJOR.MINOR, such as 2.72.`);
      if (compare(parsed, MIN) < 0 || compare(parsed, MAX) > 0)
        throw new NotAcceptable(
          `Version ${raw} is not supported by the API. Minimum is ${MIN_VERSION} and maximum is ${MAX_VERSION}.`,
        );
      version = parsed;
    }
    ctx.state.microversion = version;
    // Headers set here survive an error: the error handler replaces only status and body.
    ctx.set(HEADER, `${version.major}.${version.minor}`);
    await next();
  };
}

/**
 * A route that exists only in a range of microversions (inclusive; `upTo` open when omitted): the
 * others get the 404 an unknown URL gets, as Manila's router does. Manila renamed its extension
 * URLs at 2.7 (`os-services` → `services`, `os-quota-sets` → `quota-sets` …), and later
 * additions answer only from the version that brought them.
 */
export function onlyVersions(from: string, upTo?: string): Middleware {
  return async (ctx, next) => {
    const v: Microversion = ctx.state.microversion;
    if (!atLeast(v, from) || (upTo !== undefined && compare(v, parseVersion(upTo) as Microversion) > 0))
      throw new NotFound(`The resource could not be found: ${ctx.method} ${ctx.path}.`);
    await next();
  };
}
