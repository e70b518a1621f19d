/**
 * Every error becomes one line (never a stack trace unless --debug) and an exit code. API faults
 * print as the OpenStack clients print them; connection and auth-URL problems get a hint.
 */
import { ApiError, AuthUrlError, ClientError, ConnectionError } from './client/index.ts';
import type { Context } from './context.ts';
import { CommandError, EXIT } from './errors.ts';

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

function configured(ctx: Context | undefined) {
  try {
    return ctx?.config ?? null;
  } catch {
    return null;
  }
}

export function describeError(err: unknown, ctx?: Context): { message: string; exitCode: number } {
  if (err instanceof CommandError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof ApiError) return { message: err.describe(), exitCode: EXIT.FAILURE };
  const cfg = configured(ctx);
  if (err instanceof AuthUrlError) {
    const source = cfg?.authUrlSource ?? 'OS_AUTH_URL';
    return {
      message: `${err.message} Check ${source}: abaca serves Keystone v3 at ${origin(err.authUrl)}/identity/v3.`,
      exitCode: EXIT.FAILURE,
    };
  }
  if (err instanceof ConnectionError) {
    let which = "the service catalog's URLs (ABACA_PUBLIC_URL on the server)";
    if (cfg?.shareEndpoint && origin(err.url) === origin(cfg.shareEndpoint))
      which = '--os-endpoint / OS_ENDPOINT';
    else {
      const authUrl = cfg && 'authUrl' in cfg.credentials ? cfg.credentials.authUrl : undefined;
      if (authUrl && origin(err.url) === origin(authUrl)) which = cfg?.authUrlSource ?? 'OS_AUTH_URL';
    }
    const text = err.message.charAt(0).toUpperCase() + err.message.slice(1);
    return { message: `${text}. Is abaca-server running there? Check ${which}.`, exitCode: EXIT.FAILURE };
  }
  if (err instanceof ClientError) return { message: err.message, exitCode: EXIT.FAILURE };
  const message = err instanceof Error ? err.message : String(err);
  return {
    message: `Unexpected error: ${message} (run with --debug to see the stack trace)`,
    exitCode: EXIT.FAILURE,
  };
}
