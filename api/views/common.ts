import type { Config } from '../../services/config.ts';
import { shareUrl } from '../../services/identity/catalog.ts';

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * Manila's timestamps: ISO 8601 without the zone letter (UTC is implied). The same text as
 * toISOString() minus its "Z", assembled by hand for four-digit years because toISOString costs
 * several times as much, and a detail page formats two timestamps per share.
 */
export const iso = (d: Date | null): string | null => {
  if (!d) return null;
  const year = d.getUTCFullYear();
  // Other years (and invalid dates, which throw) keep toISOString's own rendering.
  if (!(year >= 1000 && year <= 9999)) return d.toISOString().replace('Z', '');
  return `${year}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}:${pad2(
    d.getUTCMinutes(),
  )}:${pad2(d.getUTCSeconds())}.${pad3(d.getUTCMilliseconds())}`;
};

/** The self and bookmark links of a share API resource (`shares`, `snapshots`, …). */
export function links(config: Config, collection: string, id: string) {
  // The bookmark is the version-less URL: the share API's URL without its /v2.
  return [
    { rel: 'self', href: `${shareUrl(config)}/${collection}/${id}` },
    { rel: 'bookmark', href: `${config.publicUrl}/${collection}/${id}` },
  ];
}
