/**
 * The gRPC server: Identity always, Controller and/or Node by mode, on a unix socket. Every call
 * goes through one wrapper that logs it (method, the ids it names, duration, outcome — never
 * secrets, volume_context or publish_context values) and turns a thrown error into a status.
 */
import fs from 'node:fs';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import pino, { type DestinationStream, type Logger } from 'pino';
import { loggerOptions } from '../services/logger.ts';
import { CsiError } from './errors.ts';
import { csiServices } from './proto.ts';
import type { Handlers } from './types.ts';

/** Request fields that name what a call is about; only these are logged. */
const LOGGED_FIELDS = [
  'name',
  'volume_id',
  'node_id',
  'snapshot_id',
  'source_volume_id',
  'staging_target_path',
  'target_path',
  'volume_path',
  'starting_token',
  'max_entries',
] as const;

export function summarize(req: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of LOGGED_FIELDS) {
    const v = req[k];
    if (v !== undefined && v !== '' && v !== 0) out[k] = v;
  }
  return out;
}

/**
 * The plugin's logger: the server's options (secret fields such as `secrets`, `os-password` and
 * tokens redacted, database errors without their values), with the plugin's mode in every line.
 */
export function csiLogger(level: string, mode: string, destination: DestinationStream): Logger {
  return pino({ ...loggerOptions(level, 'abaca-csi'), base: { service: 'abaca-csi', mode } }, destination);
}

/** The path of a `unix://` endpoint (`unix:///csi/csi.sock` or `unix:/csi/csi.sock`). */
export function socketPath(endpoint: string): string {
  const m = /^unix:(?:\/\/)?(\/.+)$/.exec(endpoint);
  if (!m) throw new Error(`--endpoint must be unix:///absolute/path.sock, not ${endpoint}`);
  return m[1]!;
}

export interface ServedServices {
  identity: Handlers;
  controller?: Handlers;
  node?: Handlers;
}

function wrap(log: Logger, service: string, handlers: Handlers) {
  const impl: Record<string, (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void> =
    {};
  for (const [method, fn] of Object.entries(handlers)) {
    impl[method] = (call, cb) => {
      const started = Date.now();
      const req = (call.request ?? {}) as Record<string, unknown>;
      const about = summarize(req);
      fn(req).then(
        (res) => {
          log.info({ rpc: `${service}/${method}`, ...about, ms: Date.now() - started }, 'ok');
          cb(null, res);
        },
        (err: unknown) => {
          const ms = Date.now() - started;
          if (err instanceof CsiError) {
            log.warn(
              { rpc: `${service}/${method}`, ...about, ms, code: status[err.code], reason: err.message },
              'refused',
            );
            cb({ code: err.code, details: err.message });
          } else {
            log.error({ rpc: `${service}/${method}`, ...about, ms, err }, 'failed');
            cb({ code: status.INTERNAL, details: `${method} failed: ${(err as Error)?.message ?? err}` });
          }
        },
      );
    };
  }
  return impl;
}

export interface RunningServer {
  server: Server;
  path: string;
  stop(): Promise<void>;
}

export async function serve(endpoint: string, services: ServedServices, log: Logger): Promise<RunningServer> {
  const file = socketPath(endpoint);
  // A socket left by a previous run (the plugin was killed) would make bind fail with EADDRINUSE.
  try {
    if (fs.statSync(file).isSocket()) fs.unlinkSync(file);
  } catch {}
  const defs = csiServices();
  const server = new Server();
  server.addService(defs.Identity.service, wrap(log, 'Identity', services.identity));
  if (services.controller)
    server.addService(defs.Controller.service, wrap(log, 'Controller', services.controller));
  if (services.node) server.addService(defs.Node.service, wrap(log, 'Node', services.node));
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${file}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return {
    server,
    path: file,
    stop: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
