import type { CatalogEntry } from './types.ts';

/** keystoneauth accepts `publicURL`-style names too. */
function normalizeInterface(i: string): string {
  return i.replace(/URL$/, '').toLowerCase();
}

/**
 * The URL of the first service of one of `types` (in order) with an endpoint on `iface` in
 * `region` (matched against `region_id` or `region`; any region when not given), as keystoneauth
 * picks it. Trailing slashes are dropped.
 */
export function findEndpoint(
  catalog: CatalogEntry[],
  types: readonly string[],
  iface = 'public',
  region?: string | null,
): string | undefined {
  const want = normalizeInterface(iface);
  for (const type of types) {
    for (const service of catalog) {
      if (service.type !== type) continue;
      const ep = service.endpoints.find(
        (e) =>
          normalizeInterface(e.interface) === want &&
          (!region || e.region_id === region || e.region === region),
      );
      if (ep) return ep.url.replace(/\/+$/, '');
    }
  }
  return undefined;
}
