import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { identityRouters } from '../../../api/identity/index.ts';
import {
  ADMIN_PASSWORD,
  faultMessage,
  makeTestApp,
  STATIC_ADMIN_TOKEN,
  type TestApp,
} from '../../helpers/app.ts';
import { type Method, V3 } from '../../helpers/identity.ts';

/**
 * Every identity route × every kind of caller → the expected status. Each test makes
 * the targets it writes to, so the rows do not depend on each other; a write that is refused must
 * leave no trace, and one that succeeds must have its effect.
 *
 * Callers: admin (admin role on the admin project), member (Mia, member of proj-a), reader (Rita,
 * reader of proj-a), other (Otto, member of proj-b), no token, and a garbage token.
 */

type Caller = 'admin' | 'member' | 'reader' | 'other';
type Who = Caller | 'none' | 'garbage';
const CALLERS: Caller[] = ['admin', 'member', 'reader', 'other'];
const WHO: Who[] = [...CALLERS, 'none', 'garbage'];
const FAULTS: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
};

interface Persona {
  name: string;
  password: string;
  project: string;
  userId: string;
  projectId: string;
  token: string;
}

interface Prepared {
  path: string;
  body?: object;
  headers?: Record<string, string>;
  /** Whether the write took effect; asserted to be true exactly when the call succeeded. */
  happened?: () => Promise<boolean>;
}

interface Row {
  route: string;
  method: Method;
  /** Statuses for admin, member, reader, other. */
  expect: [number, number, number, number];
  /** Answered without a token (version discovery): no token and garbage get the admin's status. */
  public?: boolean;
  prepare: (who: Who) => Promise<Prepared>;
}

let t: TestApp;
const p = {} as Record<Caller, Persona>;
const fx = {} as {
  projA: string;
  projB: string;
  domain: string;
  role: string;
  readerRole: string;
  memberRole: string;
  miaCred: string;
};
let seq = 0;
const uniq = (prefix: string) => `${prefix}-${++seq}`;

before(async () => {
  t = await makeTestApp();
  const mia = await t.makeUser({ name: 'mia', project: 'proj-a', role: 'member' });
  const rita = await t.makeUser({ name: 'rita', project: 'proj-a', role: 'reader' });
  const otto = await t.makeUser({ name: 'otto', project: 'proj-b', role: 'member' });
  p.admin = {
    name: 'admin',
    password: ADMIN_PASSWORD,
    project: 'admin',
    userId: t.adminUserId,
    projectId: t.adminProjectId,
    token: await t.adminToken(),
  };
  p.member = { name: 'mia', project: 'proj-a', ...mia };
  p.reader = { name: 'rita', project: 'proj-a', ...rita };
  p.other = { name: 'otto', project: 'proj-b', ...otto };
  fx.projA = mia.projectId;
  fx.projB = otto.projectId;
  const roles = (await sa('get', '/roles').expect(200)).body.roles as { id: string; name: string }[];
  fx.readerRole = roles.find((r) => r.name === 'reader')!.id;
  fx.memberRole = roles.find((r) => r.name === 'member')!.id;
  fx.domain = (
    await sa('post', '/domains')
      .send({ domain: { name: 'matrix-domain' } })
      .expect(201)
  ).body.domain.id;
  fx.role = (
    await sa('post', '/roles')
      .send({ role: { name: 'matrix-role' } })
      .expect(201)
  ).body.role.id;
  fx.miaCred = await newMiaCred();
});
after(() => t.close());

/** A request as the static admin token, which no test can revoke: for setup and checks. */
function sa(method: Method, path: string) {
  return t.http()[method](`${V3}${path}`).set('X-Auth-Token', STATIC_ADMIN_TOKEN);
}

async function exists(path: string): Promise<boolean> {
  const status = (await sa('get', path)).status;
  assert.ok(status === 200 || status === 204 || status === 404, `GET ${path} → ${status}`);
  return status !== 404;
}

async function listed(path: string, key: string): Promise<boolean> {
  return ((await sa('get', path).expect(200)).body[key] as unknown[]).length > 0;
}

/** Tokens revoked by an earlier row (password change, credential deletion) are replaced. */
async function freshTokens(): Promise<void> {
  for (const c of CALLERS) {
    try {
      await t.identity.tokens.authenticate(p[c].token);
    } catch {
      p[c].token = await t.login(p[c].name, p[c].password, p[c].project);
    }
  }
}

async function valid(token: string): Promise<boolean> {
  return t.identity.tokens.authenticate(token).then(
    () => true,
    () => false,
  );
}

const selfOf = (who: Who) => p[who === 'none' || who === 'garbage' ? 'member' : who];

async function newMiaCred(): Promise<string> {
  await freshTokens();
  const res = await t
    .http()
    .post(`${V3}/users/${p.member.userId}/application_credentials`)
    .set('X-Auth-Token', p.member.token)
    .send({ application_credential: { name: uniq('mia-cred') } })
    .expect(201);
  return res.body.application_credential.id;
}

async function newProject(): Promise<string> {
  return (
    await sa('post', '/projects')
      .send({ project: { name: uniq('project') } })
      .expect(201)
  ).body.project.id;
}

async function newUser(): Promise<string> {
  return (
    await sa('post', '/users')
      .send({ user: { name: uniq('user') } })
      .expect(201)
  ).body.user.id;
}

const grantPath = (project: string, user: string, role: string) =>
  `/projects/${project}/users/${user}/roles/${role}`;

const all = (s: number): [number, number, number, number] => [s, s, s, s];
const adminOnly = (s: number): [number, number, number, number] => [s, 403, 403, 403];

const ROWS: Row[] = [
  // Version discovery needs no token.
  {
    route: 'GET /identity',
    method: 'get',
    expect: all(300),
    public: true,
    prepare: async () => ({ path: '/identity' }),
  },
  {
    route: 'GET /identity/v3',
    method: 'get',
    expect: all(200),
    public: true,
    prepare: async () => ({ path: V3 }),
  },

  // Tokens and the caller's own view.
  {
    route: 'GET /auth/projects',
    method: 'get',
    expect: all(200),
    prepare: async () => ({ path: `${V3}/auth/projects` }),
  },
  {
    route: 'GET /auth/catalog',
    method: 'get',
    expect: all(200),
    prepare: async () => ({ path: `${V3}/auth/catalog` }),
  },
  {
    route: "GET /auth/tokens (the member's token)",
    method: 'get',
    expect: [200, 200, 403, 403],
    prepare: async () => ({ path: `${V3}/auth/tokens`, headers: { 'X-Subject-Token': p.member.token } }),
  },
  {
    route: "HEAD /auth/tokens (the member's token)",
    method: 'head',
    expect: [200, 200, 403, 403],
    prepare: async () => ({ path: `${V3}/auth/tokens`, headers: { 'X-Subject-Token': p.member.token } }),
  },
  {
    route: "DELETE /auth/tokens (another of the member's tokens)",
    method: 'delete',
    expect: [204, 204, 403, 403],
    prepare: async () => {
      const subject = await t.login('mia', p.member.password, 'proj-a');
      return {
        path: `${V3}/auth/tokens`,
        headers: { 'X-Subject-Token': subject },
        happened: async () => !(await valid(subject)),
      };
    },
  },

  // Domains.
  {
    route: 'GET /domains',
    method: 'get',
    expect: [200, 403, 403, 403],
    prepare: async () => ({ path: `${V3}/domains` }),
  },
  {
    route: 'POST /domains',
    method: 'post',
    expect: [201, 403, 403, 403],
    prepare: async () => {
      const name = uniq('domain');
      return {
        path: `${V3}/domains`,
        body: { domain: { name } },
        happened: () => listed(`/domains?name=${name}`, 'domains'),
      };
    },
  },
  {
    route: 'GET /domains/{default} (everyone’s domain)',
    method: 'get',
    expect: all(200),
    prepare: async () => ({ path: `${V3}/domains/default` }),
  },
  {
    route: 'GET /domains/{another domain}',
    method: 'get',
    expect: [200, 404, 404, 404],
    prepare: async () => ({ path: `${V3}/domains/${fx.domain}` }),
  },
  {
    route: 'PATCH /domains/{id}',
    method: 'patch',
    expect: adminOnly(200),
    prepare: async () => {
      const description = uniq('description');
      return {
        path: `${V3}/domains/${fx.domain}`,
        body: { domain: { description } },
        happened: async () =>
          (await sa('get', `/domains/${fx.domain}`).expect(200)).body.domain.description === description,
      };
    },
  },
  {
    route: 'DELETE /domains/{disabled domain}',
    method: 'delete',
    expect: adminOnly(204),
    prepare: async () => {
      const id = (
        await sa('post', '/domains')
          .send({ domain: { name: uniq('doomed-domain'), enabled: false } })
          .expect(201)
      ).body.domain.id;
      return { path: `${V3}/domains/${id}`, happened: async () => !(await exists(`/domains/${id}`)) };
    },
  },

  // Projects.
  {
    route: 'GET /projects',
    method: 'get',
    expect: adminOnly(200),
    prepare: async () => ({ path: `${V3}/projects` }),
  },
  {
    route: 'POST /projects',
    method: 'post',
    expect: adminOnly(201),
    prepare: async () => {
      const name = uniq('project');
      return {
        path: `${V3}/projects`,
        body: { project: { name } },
        happened: () => listed(`/projects?name=${name}`, 'projects'),
      };
    },
  },
  {
    route: 'GET /projects/{proj-a}',
    method: 'get',
    expect: [200, 200, 200, 404],
    prepare: async () => ({ path: `${V3}/projects/${fx.projA}` }),
  },
  {
    route: 'GET /projects/{proj-b}',
    method: 'get',
    expect: [200, 404, 404, 200],
    prepare: async () => ({ path: `${V3}/projects/${fx.projB}` }),
  },
  {
    route: 'PATCH /projects/{proj-a}',
    method: 'patch',
    expect: adminOnly(200),
    prepare: async () => {
      const description = uniq('description');
      return {
        path: `${V3}/projects/${fx.projA}`,
        body: { project: { description } },
        happened: async () =>
          (await sa('get', `/projects/${fx.projA}`).expect(200)).body.project.description === description,
      };
    },
  },
  {
    route: 'DELETE /projects/{a project the member and reader hold roles on}',
    method: 'delete',
    expect: adminOnly(204),
    prepare: async () => {
      const id = await newProject();
      await sa('put', grantPath(id, p.member.userId, fx.memberRole)).expect(204);
      await sa('put', grantPath(id, p.reader.userId, fx.readerRole)).expect(204);
      return { path: `${V3}/projects/${id}`, happened: async () => !(await exists(`/projects/${id}`)) };
    },
  },

  // Users.
  {
    route: 'GET /users',
    method: 'get',
    expect: adminOnly(200),
    prepare: async () => ({ path: `${V3}/users` }),
  },
  {
    route: 'POST /users',
    method: 'post',
    expect: adminOnly(201),
    prepare: async () => {
      const name = uniq('user');
      return {
        path: `${V3}/users`,
        body: { user: { name } },
        happened: () => listed(`/users?name=${name}`, 'users'),
      };
    },
  },
  {
    route: 'GET /users/{self}',
    method: 'get',
    expect: all(200),
    prepare: async (who) => ({ path: `${V3}/users/${selfOf(who).userId}` }),
  },
  {
    route: 'GET /users/{member}',
    method: 'get',
    expect: [200, 200, 404, 404],
    prepare: async () => ({ path: `${V3}/users/${p.member.userId}` }),
  },
  {
    route: 'PATCH /users/{another user}',
    method: 'patch',
    expect: adminOnly(200),
    prepare: async () => {
      const id = await newUser();
      return {
        path: `${V3}/users/${id}`,
        body: { user: { email: 'changed@example.com' } },
        happened: async () =>
          (await sa('get', `/users/${id}`).expect(200)).body.user.email === 'changed@example.com',
      };
    },
  },
  {
    route: 'PATCH /users/{self}',
    method: 'patch',
    expect: adminOnly(200),
    prepare: async (who) => {
      const id = selfOf(who).userId;
      const email = `${uniq('self')}@example.com`;
      return {
        path: `${V3}/users/${id}`,
        body: { user: { email } },
        happened: async () => (await sa('get', `/users/${id}`).expect(200)).body.user.email === email,
      };
    },
  },
  {
    route: 'DELETE /users/{another user}',
    method: 'delete',
    expect: adminOnly(204),
    prepare: async () => {
      const id = await newUser();
      return { path: `${V3}/users/${id}`, happened: async () => !(await exists(`/users/${id}`)) };
    },
  },
  {
    route: 'DELETE /users/{self}',
    method: 'delete',
    expect: [400, 403, 403, 403],
    prepare: async (who) => {
      const id = selfOf(who).userId;
      return { path: `${V3}/users/${id}`, happened: async () => !(await exists(`/users/${id}`)) };
    },
  },
  {
    route: 'POST /users/{self}/password',
    method: 'post',
    expect: all(204),
    prepare: async (who) => {
      const me = selfOf(who);
      const before = me.token;
      return {
        path: `${V3}/users/${me.userId}/password`,
        // The same password again: the change still happens (and revokes the caller's tokens).
        body: { user: { original_password: me.password, password: me.password } },
        happened: async () => !(await valid(before)),
      };
    },
  },
  {
    route: "POST /users/{member}/password (with the member's password)",
    method: 'post',
    expect: [403, 204, 403, 403],
    prepare: async () => {
      const before = p.member.token;
      return {
        path: `${V3}/users/${p.member.userId}/password`,
        body: { user: { original_password: p.member.password, password: p.member.password } },
        happened: async () => !(await valid(before)),
      };
    },
  },
  {
    route: 'GET /users/{self}/projects',
    method: 'get',
    expect: all(200),
    prepare: async (who) => ({ path: `${V3}/users/${selfOf(who).userId}/projects` }),
  },
  {
    route: 'GET /users/{member}/projects',
    method: 'get',
    expect: [200, 200, 403, 403],
    prepare: async () => ({ path: `${V3}/users/${p.member.userId}/projects` }),
  },

  // Roles.
  {
    route: 'GET /roles',
    method: 'get',
    expect: adminOnly(200),
    prepare: async () => ({ path: `${V3}/roles` }),
  },
  {
    route: 'POST /roles',
    method: 'post',
    expect: adminOnly(201),
    prepare: async () => {
      const name = uniq('role');
      return {
        path: `${V3}/roles`,
        body: { role: { name } },
        happened: () => listed(`/roles?name=${name}`, 'roles'),
      };
    },
  },
  {
    route: 'GET /roles/{member}',
    method: 'get',
    expect: adminOnly(200),
    prepare: async () => ({ path: `${V3}/roles/${fx.memberRole}` }),
  },
  {
    route: 'PATCH /roles/{id}',
    method: 'patch',
    expect: adminOnly(200),
    prepare: async () => {
      const description = uniq('description');
      return {
        path: `${V3}/roles/${fx.role}`,
        body: { role: { description } },
        happened: async () =>
          (await sa('get', `/roles/${fx.role}`).expect(200)).body.role.description === description,
      };
    },
  },
  {
    route: 'DELETE /roles/{id}',
    method: 'delete',
    expect: adminOnly(204),
    prepare: async () => {
      const id = (
        await sa('post', '/roles')
          .send({ role: { name: uniq('doomed-role') } })
          .expect(201)
      ).body.role.id;
      return { path: `${V3}/roles/${id}`, happened: async () => !(await exists(`/roles/${id}`)) };
    },
  },

  // Grants and role assignments.
  {
    route: 'PUT /projects/{proj-a}/users/{u}/roles/{reader}',
    method: 'put',
    expect: adminOnly(204),
    prepare: async () => {
      const path = grantPath(fx.projA, await newUser(), fx.readerRole);
      return { path: `${V3}${path}`, happened: () => exists(path) };
    },
  },
  {
    route: 'GET /projects/{proj-a}/users/{member}/roles/{member}',
    method: 'get',
    expect: adminOnly(204),
    prepare: async () => ({ path: `${V3}${grantPath(fx.projA, p.member.userId, fx.memberRole)}` }),
  },
  {
    route: 'HEAD /projects/{proj-a}/users/{member}/roles/{member}',
    method: 'head',
    expect: adminOnly(204),
    prepare: async () => ({ path: `${V3}${grantPath(fx.projA, p.member.userId, fx.memberRole)}` }),
  },
  {
    route: 'DELETE /projects/{proj-a}/users/{u}/roles/{reader}',
    method: 'delete',
    expect: adminOnly(204),
    prepare: async () => {
      const path = grantPath(fx.projA, await newUser(), fx.readerRole);
      await sa('put', path).expect(204);
      return { path: `${V3}${path}`, happened: async () => !(await exists(path)) };
    },
  },
  {
    route: 'GET /projects/{proj-a}/users/{member}/roles',
    method: 'get',
    expect: adminOnly(200),
    prepare: async () => ({ path: `${V3}/projects/${fx.projA}/users/${p.member.userId}/roles` }),
  },
  {
    route: 'GET /role_assignments',
    method: 'get',
    expect: adminOnly(200),
    prepare: async () => ({ path: `${V3}/role_assignments` }),
  },
  {
    route: 'GET /role_assignments?user.id={self}',
    method: 'get',
    expect: all(200),
    prepare: async (who) => ({ path: `${V3}/role_assignments?user.id=${selfOf(who).userId}` }),
  },
  {
    route: 'GET /role_assignments?user.id={member}',
    method: 'get',
    expect: [200, 200, 403, 403],
    prepare: async () => ({ path: `${V3}/role_assignments?user.id=${p.member.userId}` }),
  },
  {
    route: 'GET /role_assignments?scope.project.id={proj-a}',
    method: 'get',
    expect: adminOnly(200),
    prepare: async () => ({ path: `${V3}/role_assignments?scope.project.id=${fx.projA}` }),
  },

  // Application credentials.
  {
    route: 'GET /users/{self}/application_credentials',
    method: 'get',
    expect: all(200),
    prepare: async (who) => ({ path: `${V3}/users/${selfOf(who).userId}/application_credentials` }),
  },
  {
    route: 'GET /users/{member}/application_credentials',
    method: 'get',
    expect: [200, 200, 403, 403],
    prepare: async () => ({ path: `${V3}/users/${p.member.userId}/application_credentials` }),
  },
  {
    route: 'GET /users/{member}/application_credentials/{id}',
    method: 'get',
    expect: [200, 200, 403, 403],
    prepare: async () => ({ path: `${V3}/users/${p.member.userId}/application_credentials/${fx.miaCred}` }),
  },
  {
    route: 'POST /users/{self}/application_credentials',
    method: 'post',
    expect: all(201),
    prepare: async (who) => {
      const name = uniq('own-cred');
      const path = `/users/${selfOf(who).userId}/application_credentials`;
      return {
        path: `${V3}${path}`,
        body: { application_credential: { name } },
        happened: () => listed(`${path}?name=${name}`, 'application_credentials'),
      };
    },
  },
  {
    route: 'POST /users/{member}/application_credentials',
    method: 'post',
    expect: [403, 201, 403, 403],
    prepare: async () => {
      const name = uniq('for-mia');
      const path = `/users/${p.member.userId}/application_credentials`;
      return {
        path: `${V3}${path}`,
        body: { application_credential: { name } },
        happened: () => listed(`${path}?name=${name}`, 'application_credentials'),
      };
    },
  },
  {
    route: 'DELETE /users/{member}/application_credentials/{id}',
    method: 'delete',
    expect: [204, 204, 403, 403],
    prepare: async () => {
      const path = `/users/${p.member.userId}/application_credentials/${await newMiaCred()}`;
      return { path: `${V3}${path}`, happened: async () => !(await exists(path)) };
    },
  },
];

function expected(row: Row, who: Who): number {
  if (who === 'none' || who === 'garbage') return row.public ? row.expect[0] : 401;
  const [admin, member, reader, other] = row.expect;
  return { admin, member, reader, other }[who];
}

for (const row of ROWS) {
  describe(row.route, () => {
    for (const who of WHO) {
      const status = expected(row, who);
      test(`${who} → ${status}`, async () => {
        await freshTokens();
        const prep = await row.prepare(who);
        let req = t.http()[row.method](prep.path);
        if (who === 'garbage') req = req.set('X-Auth-Token', 'garbage');
        else if (who !== 'none') req = req.set('X-Auth-Token', p[who].token);
        for (const [k, v] of Object.entries(prep.headers ?? {})) req = req.set(k, v);
        const res = await (prep.body ? req.send(prep.body) : req);
        assert.equal(res.status, status, `${row.route} as ${who}: ${res.status} ${JSON.stringify(res.body)}`);
        const fault = FAULTS[status];
        if (fault && row.method !== 'head') faultMessage(res.body, fault, status);
        if (prep.happened)
          assert.equal(
            await prep.happened(),
            status < 300,
            'the write took effect exactly when it succeeded',
          );
      });
    }
  });
}

test('the matrix has a row for every identity route the server registers', () => {
  /** "GET /users/{member}/projects" → "GET /users/{}/projects" */
  const key = (method: string, path: string) =>
    `${method} ${path
      .replace(/\{[^}]*\}|:\w+/g, '{}')
      .replace(/\?.*$/, '')
      .replace(/(.)\/$/, '$1')}`;
  const rows = new Set<string>();
  for (const r of ROWS) {
    const [method, ...rest] = r.route.split(' ');
    assert.equal(method, r.method.toUpperCase(), `${r.route}: label and method agree`);
    const path = rest.join(' ').replace(/ \(.*\)$/, '');
    rows.add(key(method!, path.startsWith('/identity') ? path : `${V3}${path}`));
  }
  const noop = async (_ctx: unknown, next: () => Promise<void>) => next();
  const registered = new Set<string>();
  for (const router of identityRouters(t.config, t.identity, noop)) {
    for (const layer of router.stack) {
      // HEAD mirrors GET on every route; the rows name it only where clients use it.
      for (const m of layer.methods) if (m !== 'HEAD') registered.add(key(m, String(layer.path)));
    }
  }
  assert.ok(registered.size >= 30, `found ${registered.size} routes`);
  // POST /auth/tokens is the one route that takes no token by design: auth-tokens.test.ts covers it.
  const missing = [...registered].filter((r) => !rows.has(r) && r !== `POST ${V3}/auth/tokens`);
  assert.deepEqual(missing, [], `routes without a matrix row: ${missing.join(', ')}`);
  assert.deepEqual(
    [...rows].filter((r) => !registered.has(r) && !r.startsWith('HEAD ')),
    [],
    'every row names a real route',
  );
});
