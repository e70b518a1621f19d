import Router from '@koa/router';
import type { Config } from '../services/config.ts';
import { shareUrl } from '../services/identity/catalog.ts';
import { MAX_VERSION, MIN_VERSION } from './middleware/microversion.ts';

/** The share API version document (manila/api/versions.py). */
export function versionDoc(config: Config) {
  return {
    id: 'v2.0',
    status: 'CURRENT',
    version: MAX_VERSION,
    min_version: MIN_VERSION,
    updated: '2015-08-27T11:33:21Z',
    links: [
      { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' },
      { rel: 'self', href: `${shareUrl(config)}/` },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.share+json;version=1' }],
  };
}

/**
 * The retired v1 API, as Manila still lists it: DEPRECATED, with no microversions (empty
 * `version` and `min_version`). abaca serves only this document under /v1.
 */
export function v1VersionDoc(config: Config) {
  return {
    id: 'v1.0',
    status: 'DEPRECATED',
    version: '',
    min_version: '',
    updated: '2015-08-27T11:33:21Z',
    links: [
      { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' },
      { rel: 'self', href: `${config.publicUrl}/v1/` },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.share+json;version=1' }],
  };
}

/**
 * GET / (300, what `manila` negotiates against: both API versions, and, as Manila's, no
 * microversion header), GET /v2/ (200) and GET /v1/ (200, microversion 1.0 whatever was asked).
 * No token needed.
 */
export function versionsRouter(config: Config): Router {
  const r = new Router();
  r.get('/', (ctx) => {
    ctx.status = 300;
    ctx.body = { versions: [v1VersionDoc(config), versionDoc(config)] };
  });
  r.get(['/v1', '/v1/'], (ctx) => {
    ctx.set('Vary', 'X-OpenStack-Manila-API-Version');
    ctx.set('X-OpenStack-Manila-API-Version', '1.0');
    ctx.body = { versions: [v1VersionDoc(config)] };
  });
  r.get('/v2', (ctx) => {
    ctx.body = { versions: [versionDoc(config)] };
  });
  return r;
}
