import type { Config } from '../../services/config.ts';
import { shareUrl } from '../../services/identity/catalog.ts';

/** Manila's timestamps: ISO 8601 without the zone letter (UTC is implied). */
export const iso = (d: Date | null) => (d ? d.toISOString().replace('Z', '') : null);

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
