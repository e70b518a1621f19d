import { createHash } from 'node:crypto';
import type { Config } from '../config.ts';

export interface CatalogEndpoint {
  id: string;
  interface: 'public';
  region: string;
  region_id: string;
  url: string;
}

export interface CatalogService {
  id: string;
  type: string;
  name: string;
  endpoints: CatalogEndpoint[];
}

/** Stable ids derived from the URL, so a catalog looks the same on every server and restart. */
function stableId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}

export function identityUrl(config: Config): string {
  return `${config.publicUrl}/identity/v3`;
}

export function shareUrl(config: Config): string {
  return `${config.publicUrl}/v2`;
}

/**
 * The service catalog every token carries: identity, and the share API under both types the
 * clients look up (`openstack share` wants shared-file-system, `manila` wants sharev2).
 */
export function buildCatalog(config: Config): CatalogService[] {
  const entry = (type: string, name: string, url: string): CatalogService => ({
    id: stableId('service', type),
    type,
    name,
    endpoints: [
      {
        id: stableId('endpoint', type, url),
        interface: 'public',
        region: config.region,
        region_id: config.region,
        url,
      },
    ],
  });
  return [
    entry('identity', 'keystone', identityUrl(config)),
    entry('shared-file-system', 'manila', shareUrl(config)),
    entry('sharev2', 'manilav2', shareUrl(config)),
  ];
}
