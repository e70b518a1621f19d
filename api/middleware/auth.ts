import { timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import type { TokenService } from '../../services/identity/tokens.ts';
import type { Auth } from '../../services/policy.ts';

export interface AuthOptions {
  tokens: TokenService;
  /** Keystone's admin_token: a configured secret that acts as admin without a real token. */
  staticAdmin: { token: string; auth: Auth } | null;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Reads X-Auth-Token and gives handlers `ctx.state.auth` ({userId, projectId, roles, isAdmin, …}).
 * A missing, malformed, expired, revoked or forged token is a 401.
 */
export function requireAuth({ tokens, staticAdmin }: AuthOptions): Middleware {
  return async (ctx, next) => {
    const token = ctx.get('x-auth-token');
    const auth: Auth =
      staticAdmin && token && sameSecret(token, staticAdmin.token)
        ? staticAdmin.auth
        : await tokens.authenticate(token || undefined);
    ctx.state.auth = auth;
    if (ctx.state.log && auth.projectId) ctx.state.log = ctx.state.log.child({ project_id: auth.projectId });
    await next();
  };
}
