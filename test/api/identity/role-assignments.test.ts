import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, passwordAuth, type TestApp, type TestUser } from '../../helpers/app.ts';
import { identityRequests, type Method, V3 } from '../../helpers/identity.ts';

interface Assignment {
  role: { id: string; name?: string };
  user: { id: string; name?: string; domain?: { id: string; name: string } };
  scope: { project?: { id: string; name?: string; domain?: { id: string; name: string } } };
  links: { assignment: string };
}

let t: TestApp;
let admin: string;
let base: string;
let role: { admin: string; member: string; reader: string };
/** Member of 'gus-project'. */
let gus: TestUser;
let otherDomainId: string;

before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  base = `${t.config.publicUrl}${V3}`;
  gus = await t.makeUser({ name: 'gus', project: 'gus-project', role: 'member' });
  const all = (await call('get', '/roles').expect(200)).body.roles as { id: string; name: string }[];
  const id = (n: string) => all.find((r) => r.name === n)!.id;
  role = { admin: id('admin'), member: id('member'), reader: id('reader') };
  otherDomainId = (
    await call('post', '/domains')
      .send({ domain: { name: 'ra-domain' } })
      .expect(201)
  ).body.domain.id;
});
after(() => t.close());

const { call } = identityRequests(
  () => t,
  () => admin,
);

async function newUser(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  return (
    await call('post', '/users')
      .send({ user: { name, ...extra } })
      .expect(201)
  ).body.user.id;
}

async function newProject(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  return (
    await call('post', '/projects')
      .send({ project: { name, ...extra } })
      .expect(201)
  ).body.project.id;
}

async function newRole(name: string): Promise<string> {
  return (await call('post', '/roles').send({ role: { name } }).expect(201)).body.role.id;
}

async function assignments(query: string, token: string = admin): Promise<Assignment[]> {
  return (await call('get', `/role_assignments${query ? `?${query}` : ''}`, token).expect(200)).body
    .role_assignments;
}

/** Compact [user, project, role] triples, sorted, for comparing lists. */
function triples(list: Assignment[]): string[][] {
  return list.map((a) => [a.user.id, a.scope.project?.id ?? '', a.role.id]).sort();
}

const grant = (p: string, u: string, r: string) => `/projects/${p}/users/${u}/roles/${r}`;

describe('PUT /projects/{p}/users/{u}/roles/{r}', () => {
  test('204 with no body; the grant can then be checked and listed', async () => {
    const p = await newProject('put-project');
    const u = await newUser('put-user');
    const res = await call('put', grant(p, u, role.reader)).expect(204);
    assert.equal(res.text, '');
    await call('get', grant(p, u, role.reader)).expect(204);
    await call('head', grant(p, u, role.reader)).expect(204);
    assert.deepEqual(triples(await assignments(`user.id=${u}`)), [[u, p, role.reader]]);
  });

  test('is idempotent: PUT twice is 204 both times and leaves one assignment', async () => {
    const p = await newProject('twice-project');
    const u = await newUser('twice-user');
    await call('put', grant(p, u, role.member)).expect(204);
    await call('put', grant(p, u, role.member)).expect(204);
    assert.deepEqual(triples(await assignments(`user.id=${u}`)), [[u, p, role.member]]);
    const list = await call('get', `/projects/${p}/users/${u}/roles`).expect(200);
    assert.equal(list.body.roles.length, 1);
  });

  test('a user and a project of different domains can be joined by a grant', async () => {
    const p = await newProject('foreign-project', { domain_id: otherDomainId });
    const u = await newUser('home-user');
    await call('put', grant(p, u, role.reader)).expect(204);
    assert.deepEqual(triples(await assignments(`scope.project.id=${p}`)), [[u, p, role.reader]]);
  });

  test('an unknown project, user or role is a 404 and nothing is granted', async () => {
    const p = await newProject('unknown-parts');
    const u = await newUser('unknown-parts-user');
    const cases: [string, string, string, RegExp][] = [
      ['no-such-project', u, role.member, /no-such-project/],
      [p, 'no-such-user', role.member, /no-such-user/],
      [p, u, 'no-such-role', /no-such-role/],
    ];
    for (const [pp, uu, rr, message] of cases) {
      const res = await call('put', grant(pp, uu, rr)).expect(404);
      assert.match(faultMessage(res.body, 'itemNotFound', 404), message);
    }
    assert.deepEqual(await assignments(`user.id=${u}`), []);
    assert.deepEqual(await assignments(`scope.project.id=${p}`), []);
  });

  test('granting lets the user get a token on the project; revoking stops it', async () => {
    const p = await newProject('grant-login');
    const u = await newUser('grant-login-user', { password: 'grant-login-pw' });
    const body = passwordAuth('grant-login-user', 'grant-login-pw', 'grant-login');
    await t.http().post(`${V3}/auth/tokens`).send(body).expect(401);
    await call('put', grant(p, u, role.member)).expect(204);
    const login = await t.http().post(`${V3}/auth/tokens`).send(body).expect(201);
    const token = login.headers['x-subject-token'] as string;
    assert.deepEqual(login.body.token.roles.map((r: { name: string }) => r.name).sort(), [
      'member',
      'reader',
    ]);
    await call('delete', grant(p, u, role.member)).expect(204);
    await call('get', '/auth/projects', token).expect(401);
    await t.http().post(`${V3}/auth/tokens`).send(body).expect(401);
  });

  test('non-admins get 403 and nothing is granted', async () => {
    const u = await newUser('gus-wants-to-grant');
    for (const [p, uu, r] of [
      [gus.projectId, u, role.member],
      [gus.projectId, gus.userId, role.admin],
    ] as const) {
      const res = await call('put', grant(p, uu, r), gus.token).expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
    assert.deepEqual(await assignments(`user.id=${u}`), []);
    assert.deepEqual(triples(await assignments(`user.id=${gus.userId}`)), [
      [gus.userId, gus.projectId, role.member],
    ]);
  });
});

describe('GET and HEAD /projects/{p}/users/{u}/roles/{r}', () => {
  test('a grant not held is a 404 (GET with a fault body, HEAD without)', async () => {
    const res = await call('get', grant(gus.projectId, gus.userId, role.reader)).expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
    const head = await call('head', grant(gus.projectId, gus.userId, role.admin)).expect(404);
    assert.equal(head.text, undefined);
    // An implied role is not a grant.
    await call('head', grant(gus.projectId, gus.userId, role.reader)).expect(404);
    await call('head', grant(gus.projectId, gus.userId, role.member)).expect(204);
  });

  test('unknown project, user or role is a 404', async () => {
    for (const path of [
      grant('no-such-project', gus.userId, role.member),
      grant(gus.projectId, 'no-such-user', role.member),
      grant(gus.projectId, gus.userId, 'no-such-role'),
    ]) {
      const res = await call('get', path).expect(404);
      faultMessage(res.body, 'itemNotFound', 404);
      await call('head', path).expect(404);
    }
  });

  test('non-admins get 403, even for their own grant', async () => {
    const res = await call('get', grant(gus.projectId, gus.userId, role.member), gus.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
    await call('head', grant(gus.projectId, gus.userId, role.member), gus.token).expect(403);
  });
});

describe('DELETE /projects/{p}/users/{u}/roles/{r}', () => {
  test('204; the grant is gone; revoking again is a 404', async () => {
    const p = await newProject('revoke-project');
    const u = await newUser('revoke-user');
    await call('put', grant(p, u, role.member)).expect(204);
    await call('put', grant(p, u, role.reader)).expect(204);
    const res = await call('delete', grant(p, u, role.member)).expect(204);
    assert.equal(res.text, '');
    await call('head', grant(p, u, role.member)).expect(404);
    assert.deepEqual(triples(await assignments(`user.id=${u}`)), [[u, p, role.reader]]);
    const again = await call('delete', grant(p, u, role.member)).expect(404);
    faultMessage(again.body, 'itemNotFound', 404);
  });

  test('unknown project, user or role is a 404 and nothing is revoked', async () => {
    for (const path of [
      grant('no-such-project', gus.userId, role.member),
      grant(gus.projectId, 'no-such-user', role.member),
      grant(gus.projectId, gus.userId, 'no-such-role'),
    ]) {
      const res = await call('delete', path).expect(404);
      faultMessage(res.body, 'itemNotFound', 404);
    }
    await call('head', grant(gus.projectId, gus.userId, role.member)).expect(204);
  });

  test('non-admins get 403 and the grant stays', async () => {
    const res = await call('delete', grant(gus.projectId, gus.userId, role.member), gus.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
    await call('head', grant(gus.projectId, gus.userId, role.member)).expect(204);
    await call('get', '/auth/projects', gus.token).expect(200);
  });
});

describe('GET /projects/{p}/users/{u}/roles', () => {
  test('lists the roles granted directly, as full roles, with collection links', async () => {
    const p = await newProject('list-project');
    const u = await newUser('list-user');
    const custom = await newRole('list-custom');
    await call('put', grant(p, u, role.member)).expect(204);
    await call('put', grant(p, u, custom)).expect(204);
    const res = await call('get', `/projects/${p}/users/${u}/roles`).expect(200);
    assert.deepEqual(res.body.links, {
      self: `${base}/projects/${p}/users/${u}/roles`,
      previous: null,
      next: null,
    });
    const byId = (id: string) => res.body.roles.find((r: { id: string }) => r.id === id);
    assert.equal(res.body.roles.length, 2, 'implied roles are not grants');
    assert.deepEqual(byId(role.member), (await call('get', `/roles/${role.member}`).expect(200)).body.role);
    assert.deepEqual(byId(custom), {
      id: custom,
      name: 'list-custom',
      domain_id: null,
      description: '',
      options: {},
      links: { self: `${base}/roles/${custom}` },
    });
  });

  test('no grants is an empty list; an unknown project or user is a 404', async () => {
    const u = await newUser('no-grants');
    const empty = await call('get', `/projects/${gus.projectId}/users/${u}/roles`).expect(200);
    assert.deepEqual(empty.body.roles, []);
    for (const path of [
      `/projects/no-such-project/users/${u}/roles`,
      `/projects/${gus.projectId}/users/nobody/roles`,
    ]) {
      const res = await call('get', path).expect(404);
      faultMessage(res.body, 'itemNotFound', 404);
    }
  });

  test('non-admins get 403, even for their own grants', async () => {
    const res = await call('get', `/projects/${gus.projectId}/users/${gus.userId}/roles`, gus.token).expect(
      403,
    );
    faultMessage(res.body, 'forbidden', 403);
  });
});

describe('GET /role_assignments', () => {
  let p1: string;
  let p2: string;
  let u1: string;
  let u2: string;
  let custom: string;
  before(async () => {
    p1 = await newProject('ra-p1');
    p2 = await newProject('ra-p2');
    u1 = await newUser('ra-u1');
    u2 = await newUser('ra-u2');
    custom = await newRole('ra-custom');
    await call('put', grant(p1, u1, role.member)).expect(204);
    await call('put', grant(p1, u1, role.reader)).expect(204);
    await call('put', grant(p2, u1, custom)).expect(204);
    await call('put', grant(p1, u2, role.admin)).expect(204);
  });

  test('each assignment has Keystone role, user, scope and links; the collection has links', async () => {
    const res = await call('get', `/role_assignments?user.id=${u1}&scope.project.id=${p2}`).expect(200);
    assert.deepEqual(res.body, {
      role_assignments: [
        {
          role: { id: custom },
          user: { id: u1 },
          scope: { project: { id: p2 } },
          links: { assignment: `${base}/projects/${p2}/users/${u1}/roles/${custom}` },
        },
      ],
      links: { self: `${base}/role_assignments`, previous: null, next: null },
    });
  });

  test('without filters an admin sees every assignment', async () => {
    const all = triples(await assignments(''));
    for (const tr of [
      [u1, p1, role.member],
      [u1, p1, role.reader],
      [u1, p2, custom],
      [u2, p1, role.admin],
      [t.adminUserId, t.adminProjectId, role.admin],
      [gus.userId, gus.projectId, role.member],
    ])
      assert.ok(
        all.some((x) => x.join() === tr.join()),
        `missing ${tr.join(' ')}`,
      );
  });

  test('user.id, scope.project.id and role.id filter, alone and together', async () => {
    assert.deepEqual(
      triples(await assignments(`user.id=${u1}`)),
      [
        [u1, p1, role.member],
        [u1, p1, role.reader],
        [u1, p2, custom],
      ].sort(),
    );
    assert.deepEqual(
      triples(await assignments(`scope.project.id=${p1}`)),
      [
        [u1, p1, role.member],
        [u1, p1, role.reader],
        [u2, p1, role.admin],
      ].sort(),
    );
    assert.deepEqual(triples(await assignments(`role.id=${custom}`)), [[u1, p2, custom]]);
    assert.deepEqual(triples(await assignments(`scope.project.id=${p1}&role.id=${role.admin}`)), [
      [u2, p1, role.admin],
    ]);
    assert.deepEqual(
      triples(await assignments(`user.id=${u1}&scope.project.id=${p1}&role.id=${role.reader}`)),
      [[u1, p1, role.reader]],
    );
    assert.deepEqual(await assignments('user.id=no-such-user'), []);
    assert.deepEqual(await assignments('scope.project.id=no-such-project'), []);
    assert.deepEqual(await assignments(`user.id=${u2}&role.id=${role.member}`), []);
  });

  test('effective expands implied roles once each (admin ⊃ member ⊃ reader)', async () => {
    assert.deepEqual(
      triples(await assignments(`user.id=${u2}&effective`)),
      [
        [u2, p1, role.admin],
        [u2, p1, role.member],
        [u2, p1, role.reader],
      ].sort(),
    );
    // u1 holds member and reader directly on p1: reader appears once.
    assert.deepEqual(
      triples(await assignments(`user.id=${u1}&scope.project.id=${p1}&effective=true`)),
      [
        [u1, p1, role.member],
        [u1, p1, role.reader],
      ].sort(),
    );
    // role.id matches implied roles too.
    assert.deepEqual(
      triples(await assignments(`scope.project.id=${p1}&role.id=${role.member}&effective`)),
      [
        [u1, p1, role.member],
        [u2, p1, role.member],
      ].sort(),
    );
    // effective=false is not effective.
    assert.deepEqual(triples(await assignments(`user.id=${u2}&effective=false`)), [[u2, p1, role.admin]]);
  });

  test('in an effective list every assignment link names a grant that exists (the prior role for implied ones)', {}, async () => {
    const list = await assignments(`user.id=${u2}&effective`);
    assert.equal(list.length, 3);
    for (const a of list) {
      const path = a.links.assignment.slice(t.config.publicUrl.length);
      const res = await t.http().head(path).set('X-Auth-Token', admin);
      assert.equal(res.status, 204, `${a.role.id}: HEAD ${path} → ${res.status}`);
    }
  });

  test('include_names adds the names of roles, users, projects and their domains', async () => {
    const list = await assignments(`user.id=${u1}&scope.project.id=${p2}&include_names`);
    assert.deepEqual(list, [
      {
        role: { id: custom, name: 'ra-custom' },
        user: { id: u1, name: 'ra-u1', domain: { id: 'default', name: 'Default' } },
        scope: { project: { id: p2, name: 'ra-p2', domain: { id: 'default', name: 'Default' } } },
        links: { assignment: `${base}/projects/${p2}/users/${u1}/roles/${custom}` },
      },
    ]);
    const both = await assignments(`user.id=${u2}&effective&include_names=true`);
    assert.deepEqual(both.map((a) => a.role.name).sort(), ['admin', 'member', 'reader']);
    const off = await assignments(`user.id=${u1}&scope.project.id=${p2}&include_names=false`);
    assert.deepEqual(off[0]!.role, { id: custom });
    assert.deepEqual(off[0]!.user, { id: u1 });
  });

  test('group.id and scope.domain.id match nothing: there are no groups or domain grants', async () => {
    assert.deepEqual(await assignments('group.id=anything'), []);
    assert.deepEqual(await assignments('scope.domain.id=default'), []);
  });

  test('contradictory filters are a 400 as in Keystone (user and group, domain and project, effective and group)', {}, async () => {
    for (const q of [
      `user.id=${u1}&group.id=g`,
      `scope.project.id=${p1}&scope.domain.id=default`,
      'group.id=g&effective',
    ]) {
      const res = await call('get', `/role_assignments?${q}`);
      assert.equal(res.status, 400, `${q}: ${res.status} ${JSON.stringify(res.body)}`);
      faultMessage(res.body, 'badRequest', 400);
    }
  });

  test('a non-admin may list their own assignments, and only those', async () => {
    const own = await assignments(`user.id=${gus.userId}`, gus.token);
    assert.deepEqual(triples(own), [[gus.userId, gus.projectId, role.member]]);
    const eff = await assignments(`user.id=${gus.userId}&effective&include_names`, gus.token);
    assert.deepEqual(eff.map((a) => a.role.name).sort(), ['member', 'reader']);
    for (const q of ['', `user.id=${u1}`, `scope.project.id=${gus.projectId}`, `role.id=${role.member}`]) {
      const res = await call('get', `/role_assignments${q ? `?${q}` : ''}`, gus.token);
      assert.equal(res.status, 403, `${q}: ${res.status}`);
      faultMessage(res.body, 'forbidden', 403);
    }
  });

  test('a malformed filter value is a 400', async () => {
    const res = await call('get', `/role_assignments?user.id=${'x'.repeat(65)}`).expect(400);
    assert.match(faultMessage(res.body, 'badRequest', 400), /user\.id/);
  });
});

describe('without a valid token', () => {
  test('every assignment route is a 401 and changes nothing', async () => {
    const p = await newProject('token-probe');
    const u = await newUser('token-probe-user');
    await call('put', grant(p, u, role.member)).expect(204);
    const routes: [Method, string][] = [
      ['put', grant(p, u, role.reader)],
      ['get', grant(p, u, role.member)],
      ['head', grant(p, u, role.member)],
      ['delete', grant(p, u, role.member)],
      ['get', `/projects/${p}/users/${u}/roles`],
      ['get', '/role_assignments'],
      ['get', `/role_assignments?user.id=${u}`],
    ];
    for (const token of [null, 'garbage']) {
      for (const [method, path] of routes) {
        const res = await call(method, path, token);
        assert.equal(res.status, 401, `${method} ${path} with ${token}: ${res.status}`);
        if (method !== 'head') faultMessage(res.body, 'unauthorized', 401);
      }
    }
    assert.deepEqual(triples(await assignments(`user.id=${u}`)), [[u, p, role.member]]);
  });
});
