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

/** GET / (300, what `manila` negotiates against) and GET /v2/ (200). No token needed. */
export function versionsRouter(config: Config): Router {
  const r = new Router();
  r.get('/', (ctx) => {
    ctx.status = 300;
    ctx.body = { versions: [versionDoc(config)] };
  });
  r.get('/v2', (ctx) => {
    ctx.body = { versions: [versionDoc(config)] };
  });
  return r;
}
