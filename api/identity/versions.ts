import Router from '@koa/router';
import type { Config } from '../../services/config.ts';
import * as view from '../views/identity.ts';

/** Version discovery: keystoneauth reads these before it asks for a token. */
export function identityVersionsRouter(config: Config): Router {
  const r = new Router();
  r.get('/identity', (ctx) => {
    ctx.status = 300;
    ctx.body = { versions: { values: [view.versionV3(config)] } };
  });
  r.get('/identity/v3', (ctx) => {
    ctx.body = { version: view.versionV3(config) };
  });
  return r;
}
