import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../services/config.ts';
import type { Db } from '../services/db.ts';
import type { Identity } from '../services/identity/index.ts';
import type { Auth } from '../services/policy.ts';
import type { ShareServices } from '../services/share-services.ts';
import { availabilityZonesRouter } from './availability-zones.ts';
import { bricksRouter } from './bricks.ts';
import { extensionsRouter } from './extensions.ts';
import { healthRouter } from './health.ts';
import { identityRouters } from './identity/index.ts';
import { limitsRouter } from './limits.ts';
import { messagesRouter } from './messages.ts';
import { requireAuth } from './middleware/auth.ts';
import { jsonBody } from './middleware/body.ts';
import { emptyId } from './middleware/empty-id.ts';
import { errorHandler } from './middleware/errors.ts';
import { inputRule } from './middleware/input.ts';
import { requestLogging } from './middleware/logging.ts';
import { requestMetrics } from './middleware/metrics.ts';
import { microversion } from './middleware/microversion.ts';
import { noContentBody } from './middleware/no-content.ts';
import { checkProjectPath, projectPath } from './middleware/project-path.ts';
import { requestId } from './middleware/request-id.ts';
import { osServicesRouter } from './os-services.ts';
import { quotaSetsRouter } from './quota-sets.ts';
import { schedulerStatsRouter } from './scheduler-stats.ts';
import { shareAccessRulesRouter } from './share-access-rules.ts';
import { shareGroupSnapshotsRouter } from './share-group-snapshots.ts';
import { shareGroupTypesRouter } from './share-group-types.ts';
import { shareGroupsRouter } from './share-groups.ts';
import { shareHealRouter } from './share-heal.ts';
import { shareInstancesRouter } from './share-instances.ts';
import { shareReplicasRouter } from './share-replicas.ts';
import { shareTypesRouter } from './share-types.ts';
import { legacyShareManageRouter, sharesRouter } from './shares.ts';
import { snapshotInstancesRouter } from './snapshot-instances.ts';
import { snapshotsRouter } from './snapshots.ts';
import { versionsRouter } from './versions.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  identity: Identity;
  /** The share API's services (types, shares, quotas, messages, zones). */
  share: Pick<
    ShareServices,
    | 'shareTypes'
    | 'shareGroupTypes'
    | 'shareGroups'
    | 'shareGroupSnapshots'
    | 'shares'
    | 'shareInstances'
    | 'shareActions'
    | 'snapshots'
    | 'snapshotInstances'
    | 'accessRules'
    | 'quotaSets'
    | 'messages'
    | 'availabilityZones'
    | 'osServices'
    | 'shareHeal'
    | 'pools'
    | 'bricks'
  >;
  log: Logger;
  registry: Registry;
  /** The /metrics text (default: this process's registry; several API processes gather theirs). */
  metricsText?: (() => Promise<string>) | undefined;
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

  // The share API also checks a project id given in the URL against the token's.
  const shareAuth: Middleware = (ctx, next) =>
    auth(ctx, async () => {
      checkProjectPath(ctx.state.urlProjectId, ctx.state.auth);
      await next();
    });

  const root = new Router();
  root.use(healthRouter(deps.db, deps.registry, deps.metricsText).routes());
  for (const r of identityRouters(deps.config, deps.identity, auth)) root.use(r.routes());
  root.use(versionsRouter(deps.config).routes());
  const s = deps.share;
  root.use(shareTypesRouter(s.shareTypes, shareAuth).routes());
  root.use(shareGroupTypesRouter(s.shareGroupTypes, shareAuth).routes());
  root.use(shareGroupsRouter(deps.config, s.shareGroups, shareAuth).routes());
  root.use(shareGroupSnapshotsRouter(deps.config, s.shareGroupSnapshots, shareAuth).routes());
  root.use(shareInstancesRouter(s.shareInstances, shareAuth).routes());
  root.use(sharesRouter(deps.config, s, shareAuth).routes());
  root.use(legacyShareManageRouter(s.shares, shareAuth).routes());
  root.use(extensionsRouter(shareAuth).routes());
  root.use(snapshotsRouter(deps.config, s.snapshots, shareAuth).routes());
  root.use(snapshotInstancesRouter(s.snapshotInstances, shareAuth).routes());
  root.use(shareAccessRulesRouter(s.accessRules, shareAuth).routes());
  root.use(quotaSetsRouter(s.quotaSets, shareAuth).routes());
  root.use(limitsRouter(s.quotaSets, shareAuth).routes());
  root.use(messagesRouter(deps.config, s.messages, shareAuth).routes());
  root.use(availabilityZonesRouter(s.availabilityZones, shareAuth).routes());
  root.use(osServicesRouter(s.osServices, shareAuth).routes());
  root.use(shareHealRouter(s.shareHeal, shareAuth).routes());
  root.use(bricksRouter(s.bricks, shareAuth).routes());
  root.use(shareReplicasRouter(shareAuth).routes());
  root.use(schedulerStatsRouter(s.pools, s.shareTypes, shareAuth).routes());

  app.use(requestId());
  app.use(requestLogging(deps.log));
  app.use(requestMetrics(deps.registry));
  app.use(errorHandler(deps.log));
  app.use(noContentBody());
  app.use(jsonBody(deps.config.bodyLimitBytes));
  // Microversions and /v2/{project_id} belong to the v2 share API, not to identity nor to the
  // versions document at / (which Manila serves without a microversion header).
  const version = microversion();
  const project = projectPath();
  const empty = emptyId();
  app.use((ctx, next) =>
    /^\/v2(\/|$)/.test(ctx.path) ? version(ctx, () => project(ctx, () => empty(ctx, next))) : next(),
  );
  // After the microversion, so a refused input still echoes the version header like any fault.
  app.use(inputRule());
  app.use(root.routes());
  app.use(root.allowedMethods());
  return app;
}
