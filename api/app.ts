import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../services/config.ts';
import type { Db } from '../services/db.ts';
import type { Identity } from '../services/identity/index.ts';
import type { Auth } from '../services/policy.ts';
import { healthRouter } from './health.ts';
import { identityRouters } from './identity/index.ts';
import { requireAuth } from './middleware/auth.ts';
import { jsonBody } from './middleware/body.ts';
import { errorHandler } from './middleware/errors.ts';
import { requestLogging } from './middleware/logging.ts';
import { requestMetrics } from './middleware/metrics.ts';
import { requestId } from './middleware/request-id.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  identity: Identity;
  log: Logger;
  registry: Registry;
  /** The configured static admin token and who it acts as (null: none configured). */
  staticAdmin: { token: string; auth: Auth } | null;
}

/** Builds the Koa app; the caller owns the database and the listening socket. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  // Errors are rendered and logged by errorHandler; Koa's own printer would log them twice.
  app.silent = true;
  const auth = requireAuth({ tokens: deps.identity.tokens, staticAdmin: deps.staticAdmin });

  const root = new Router();
  root.use(healthRouter(deps.db, deps.registry).routes());
  for (const r of identityRouters(deps.config, deps.identity, auth)) root.use(r.routes());

  app.use(requestId());
  app.use(requestLogging(deps.log));
  app.use(requestMetrics(deps.registry));
  app.use(errorHandler(deps.log));
  app.use(jsonBody(deps.config.bodyLimitBytes));
  app.use(root.routes());
  app.use(root.allowedMethods());
  return app;
}
