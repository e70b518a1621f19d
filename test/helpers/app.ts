import { Writable } from 'node:stream';
import type Koa from 'koa';
import { Registry } from 'prom-client';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import { staticAdminAuth } from '../../api/server.ts';
import {
  createMemoryBackend,
  createMemoryStore,
  type MemoryBackend,
  type MemoryBackendOptions,
} from '../../backends/memory.ts';
import { type Config, loadConfig } from '../../services/config.ts';
import type { Db } from '../../services/db.ts';
import { bootstrapIdentity } from '../../services/identity/bootstrap.ts';
import { createIdentity, type Identity } from '../../services/identity/index.ts';
import { createLogger } from '../../services/logger.ts';
import type { ConfiguredBackend } from '../../services/scheduler.ts';
import { createShareServices, type ShareServices } from '../../services/share-services.ts';
import { ensureDefaultShareType } from '../../services/share-types.ts';
import { createTestDb, type TestDb } from './db.ts';

export const ADMIN_PASSWORD = 'admin-password-for-tests';
export const STATIC_ADMIN_TOKEN = 'static-admin-token-for-tests-0123456789';

export interface TestApp {
  app: Koa;
  http: () => request.Agent;
  db: Db;
  dbKind: TestDb['kind'];
  config: Config;
  identity: Identity;
  /** Share services and their worker (not started: call stack.worker.drain() to run tasks). */
  stack: ShareServices;
  /** The one storage backend tests run against. */
  memory: MemoryBackend;
  adminUserId: string;
  adminProjectId: string;
  /** Lines the app logged (pino JSON, parsed). */
  logs: Record<string, unknown>[];
  /** A real admin token (password method, admin project). */
  adminToken(): Promise<string>;
  /** Issues a password token; returns the token string and the response body. */
  login(user: string, password: string, project?: string): Promise<string>;
  /** Creates a project (if needed) and a user holding `role` on it; returns ids and a token. */
  makeUser(opts: { name: string; project: string; role?: string; password?: string }): Promise<TestUser>;
  /** Rebuilds the app over the same database, as a restarted server would. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface TestUser {
  userId: string;
  projectId: string;
  password: string;
  token: string;
}

export interface TestAppOptions {
  /** Capabilities of the memory backend (default: everything). */
  memory?: Pick<MemoryBackendOptions, 'capabilities'>;
  /** Backends to serve instead of the memory backend (e.g. a replicated cluster). */
  backends?: ConfiguredBackend[];
}

export async function makeTestApp(
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const tdb = await createTestDb();
  const config = loadConfig({
    ABACA_LISTEN: '127.0.0.1:8786',
    ABACA_DATA_DIR: '/nonexistent-test-data-dir',
    ABACA_ADMIN_TOKEN: STATIC_ADMIN_TOKEN,
    ABACA_LOG_LEVEL: 'info',
    ...env,
  });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  // The server's own logger construction (redaction and error serializer included).
  const log = createLogger(config.logLevel, sink);
  const boot = await bootstrapIdentity(tdb.db, { password: ADMIN_PASSWORD, resetPassword: false });
  // Survives restart(): a restarted server talks to the same storage.
  const memoryStore = createMemoryStore();
  await ensureDefaultShareType(tdb.db);

  const t = {} as TestApp;
  const build = async () => {
    t.memory = createMemoryBackend({ name: 'mem', store: memoryStore, ...options.memory });
    t.stack = createShareServices({
      db: tdb.db,
      log,
      backends: options.backends ?? [{ backend: t.memory, availabilityZone: 'nova' }],
      serverHost: 'test',
    });
    await t.stack.init();
    t.identity = createIdentity(tdb.db, config);
    await t.identity.init();
    t.app = createApp({
      config,
      db: tdb.db,
      identity: t.identity,
      share: t.stack,
      log,
      registry: new Registry(),
      staticAdmin: {
        token: STATIC_ADMIN_TOKEN,
        auth: staticAdminAuth(boot.adminUserId, boot.adminProjectId),
      },
    });
  };
  await build();
  const server = () => t.app.callback();

  async function login(user: string, password: string, project?: string): Promise<string> {
    const res = await request(server())
      .post('/identity/v3/auth/tokens')
      .send(passwordAuth(user, password, project));
    if (res.status !== 201)
      throw new Error(`login ${user} failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.headers['x-subject-token'] as string;
  }

  Object.assign(t, {
    http: () => request.agent(server()),
    db: tdb.db,
    dbKind: tdb.kind,
    config,
    adminUserId: boot.adminUserId,
    adminProjectId: boot.adminProjectId,
    logs,
    login,
    adminToken: () => login('admin', ADMIN_PASSWORD, 'admin'),
    async makeUser({ name, project, role = 'member', password = `${name}-password` }) {
      const admin = staticAdminAuth(boot.adminUserId, boot.adminProjectId);
      const p =
        (await t.identity.projects.list(admin, { name: project }))[0] ??
        (await t.identity.projects.create(admin, { name: project }));
      const u = await t.identity.users.create(admin, { name, password, default_project_id: p.id });
      const r = (await t.identity.roles.list(admin, { name: role }))[0];
      if (!r) throw new Error(`no role ${role}`);
      await t.identity.roleAssignments.grant(admin, p.id, u.id, r.id);
      return { userId: u.id, projectId: p.id, password, token: await login(name, password, project) };
    },
    restart: build,
    close: () => tdb.close(),
  } satisfies Partial<TestApp>);
  return t;
}

export function passwordAuth(user: string, password: string, project?: string) {
  return {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: user, domain: { name: 'Default' }, password } },
      },
      ...(project ? { scope: { project: { name: project, domain: { name: 'Default' } } } } : {}),
    },
  };
}

/** Asserts a Manila fault body and returns its message. */
export function faultMessage(body: Record<string, unknown>, name: string, code: number): string {
  const fault = body[name] as { code: number; message: string } | undefined;
  if (!fault) throw new Error(`expected a '${name}' fault, got ${JSON.stringify(body)}`);
  if (fault.code !== code) throw new Error(`expected code ${code} in ${JSON.stringify(body)}`);
  return fault.message;
}
