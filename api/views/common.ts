import type { Config } from '../../services/config.ts';
import { shareUrl } from '../../services/identity/catalog.ts';

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * Manila's timestamps: ISO 8601 without the zone letter (UTC is implied). The same text as
 * toISOString() minus its "Z", assembled by hand for four-digit years because toISOString is
 * about three times slower, and a detail page formats two timestamps per share.
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

/** The link bases of the last public URL seen (it changes only when a test server rebinds). */
let bases = { publicUrl: '', self: '', bookmark: '' };

/** The self and bookmark links of a share API resource (`shares`, `snapshots`, …). */
export function links(config: Config, collection: string, id: string) {
  // Computed once per public URL, not twice per item of a list page.
  if (bases.publicUrl !== config.publicUrl) {
    const self = shareUrl(config);
    bases = { publicUrl: config.publicUrl, self, bookmark: self.replace(/\/v2$/, '') };
  }
  return [
    { rel: 'self', href: `${bases.self}/${collection}/${id}` },
    { rel: 'bookmark', href: `${bases.bookmark}/${collection}/${id}` },
  ];
}
