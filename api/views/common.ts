import type { Config } from '../../services/config.ts';
import { shareUrl } from '../../services/identity/catalog.ts';

/** Manila's timestamps: ISO 8601 without the zone letter (UTC is implied). */
export const iso = (d: Date | null) => (d ? d.toISOString().replace('Z', '') : null);

/** The self and bookmark links of a share API resource (`shares`, `snapshots`, …). */
export function links(config: Config, collection: string, id: string) {
  return [
    { rel: 'self', href: `${shareUrl(config)}/${collection}/${id}` },
    { rel: 'bookmark', href: `${shareUrl(config).replace(/\/v2$/, '')}/${collection}/${id}` },
  ];
}
