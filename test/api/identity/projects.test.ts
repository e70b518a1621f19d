import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, type TestApp, type TestUser } from '../../helpers/app.ts';
import { identityRequests, type Method, V3 } from '../../helpers/identity.ts';

let t: TestApp;
let admin: string;
let base: string;
let memberRoleId: string;
/** Member of 'pia-project'; also holds reader on 'pia-second' (her token is scoped to the first). */
let pia: TestUser;
let piaSecondId: string;
/** Reader of 'pia-project'. */
let rex: TestUser;
let otherDomainId: string;

before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  base = `${t.config.publicUrl}${V3}`;
  pia = await t.makeUser({ name: 'pia', project: 'pia-project', role: 'member' });
  rex = await t.makeUser({ name: 'rex', project: 'pia-project', role: 'reader' });
  memberRoleId = (await call('get', '/roles?name=member').expect(200)).body.roles[0].id;
  const readerRoleId = (await call('get', '/roles?name=reader').expect(200)).body.roles[0].id;
  piaSecondId = (await createProject({ name: 'pia-second' })).id as string;
  await call('put', `/projects/${piaSecondId}/users/${pia.userId}/roles/${readerRoleId}`).expect(204);
  otherDomainId = (
    await call('post', '/domains')
      .send({ domain: { name: 'other-domain' } })
      .expect(201)
  ).body.domain.id;
});
after(() => t.close());

const { call, send } = identityRequests(
  () => t,
  () => admin,
);

async function projects(query = ''): Promise<Record<string, unknown>[]> {
  return (await call('get', `/projects${query}`).expect(200)).body.projects;
}

async function createProject(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await call('post', '/projects').send({ project: body }).expect(201)).body.project;
}

describe('GET /projects', () => {
  test('lists projects with Keystone fields and collection links', async () => {
    const res = await call('get', '/projects').expect(200);
    assert.deepEqual(res.body.links, { self: `${base}/projects`, previous: null, next: null });
    const adminProject = res.body.projects.find((p: { id: string }) => p.id === t.adminProjectId);
    assert.deepEqual(adminProject, {
      id: t.adminProjectId,
      name: 'admin',
      domain_id: 'default',
      description: 'Bootstrap project for initializing the cloud.',
      enabled: true,
      parent_id: 'default',
      is_domain: false,
      tags: [],
      options: {},
      links: { self: `${base}/projects/${t.adminProjectId}` },
    });
  });

  test('?name=, ?domain_id= and ?enabled= filter, alone and together', async () => {
    const a = await createProject({ name: 'filter-a' });
    const b = await createProject({ name: 'filter-a', domain_id: otherDomainId });
    const c = await createProject({ name: 'filter-c', enabled: false });
    const ids = (list: Record<string, unknown>[]) => list.map((p) => p.id).sort();
    assert.deepEqual(ids(await projects('?name=filter-a')), [a.id, b.id].sort());
    assert.deepEqual(ids(await projects(`?name=filter-a&domain_id=${otherDomainId}`)), [b.id]);
    assert.deepEqual(ids(await projects('?name=filter-a&domain_id=default')), [a.id]);
    assert.deepEqual(ids(await projects(`?domain_id=${otherDomainId}`)), [b.id]);
    const disabled = ids(await projects('?enabled=false'));
    assert.ok(disabled.includes(c.id) && !disabled.includes(a.id));
    assert.deepEqual(ids(await projects('?name=filter-c&enabled=true')), []);
    assert.deepEqual(await projects('?name=no-such-project'), []);
    assert.deepEqual(await projects('?domain_id=no-such-domain'), []);
  });

  test('a malformed ?enabled= is a 400', async () => {
    const res = await call('get', '/projects?enabled=sometimes').expect(400);
    assert.match(faultMessage(res.body, 'badRequest', 400), /enabled/);
  });

  test('non-admins get 403: listing every project is admin-only', async () => {
    for (const u of [pia, rex]) {
      const res = await call('get', '/projects', u.token).expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
  });
});

describe('POST /projects', () => {
  test('201 with the full project; defaults to the default domain', async () => {
    const res = await call('post', '/projects')
      .send({
        project: {
          name: 'full',
          description: 'A project',
          enabled: true,
          tags: ['blue', 'green'],
          options: {},
        },
      })
      .expect(201);
    const p = res.body.project;
    assert.match(p.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(p, {
      id: p.id,
      name: 'full',
      domain_id: 'default',
      description: 'A project',
      enabled: true,
      parent_id: 'default',
      is_domain: false,
      tags: ['blue', 'green'],
      options: {},
      links: { self: `${base}/projects/${p.id}` },
    });
    assert.deepEqual((await call('get', `/projects/${p.id}`).expect(200)).body, { project: p });
    assert.deepEqual(await projects('?name=full'), [p]);
  });

  test('in another domain by domain_id; is_domain: false and a parent_id naming that domain are fine', async () => {
    const p = await createProject({
      name: 'elsewhere',
      domain_id: otherDomainId,
      parent_id: otherDomainId,
      is_domain: false,
    });
    assert.equal(p.domain_id, otherDomainId);
    assert.equal(p.parent_id, otherDomainId);
    const nullParent = await createProject({ name: 'null-parent', parent_id: null });
    assert.equal(nullParent.parent_id, 'default');
  });

  test('unknown attributes are stored and returned; id and links in the body are ignored', async () => {
    const p = await createProject({
      name: 'with-extras',
      id: 'chosen-by-client',
      links: { self: 'http://evil.example/' },
      cost_center: 'cc-1234',
      owner: { team: 'storage' },
    });
    assert.notEqual(p.id, 'chosen-by-client');
    assert.deepEqual(p.links, { self: `${base}/projects/${p.id}` });
    assert.equal(p.cost_center, 'cc-1234');
    assert.deepEqual(p.owner, { team: 'storage' });
    const shown = (await call('get', `/projects/${p.id}`).expect(200)).body.project;
    assert.equal(shown.cost_center, 'cc-1234');
    assert.deepEqual(shown.owner, { team: 'storage' });
    await call('get', '/projects/chosen-by-client').expect(404);
  });

  test('a name of 255 characters is accepted', async () => {
    assert.equal((await createProject({ name: 'p'.repeat(255) })).name, 'p'.repeat(255));
  });

  test('invalid bodies are 400 and create nothing', async () => {
    const beforeList = await projects();
    const cases: [string, string | object, RegExp][] = [
      ['malformed JSON', '{"project": {"name": ', /Malformed JSON/],
      ['empty object', {}, /project/],
      ['missing name', { project: { description: 'x' } }, /name/],
      ['empty name', { project: { name: '' } }, /name/],
      ['blank name', { project: { name: ' \t ' } }, /name/],
      ['name of 256 characters', { project: { name: 'q'.repeat(256) } }, /255/],
      ['enabled as a string', { project: { name: 'bad-1', enabled: 'yes' } }, /enabled/],
      ['tags not an array', { project: { name: 'bad-2', tags: 'blue' } }, /tags/],
      ['an empty tag', { project: { name: 'bad-3', tags: [''] } }, /tags/],
      ['a tag of 256 characters', { project: { name: 'bad-4', tags: ['t'.repeat(256)] } }, /tags/],
      [
        '81 tags',
        { project: { name: 'bad-5', tags: Array.from({ length: 81 }, (_, i) => `t${i}`) } },
        /tags/,
      ],
      ['options not an object', { project: { name: 'bad-6', options: 'x' } }, /options/],
      ['is_domain: true', { project: { name: 'bad-7', is_domain: true } }, /is_domain/],
      ['domain_id not a string', { project: { name: 'bad-8', domain_id: 7 } }, /domain_id/],
      ['unknown domain_id', { project: { name: 'bad-9', domain_id: 'no-such-domain' } }, /no-such-domain/],
    ];
    for (const [label, body, message] of cases) {
      const res = await send('post', '/projects', body);
      assert.equal(res.status, 400, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, 'badRequest', 400), message, label);
    }
    assert.deepEqual(await projects(), beforeList, 'no project was created');
  });

  test('tags with "/" or "," are refused as Keystone does (400), creating nothing', {}, async () => {
    for (const tag of ['a/b', 'a,b']) {
      const res = await send('post', '/projects', { project: { name: `tag-${tag}`, tags: [tag] } });
      assert.equal(res.status, 400, `tag ${tag}: ${res.status}`);
      faultMessage(res.body, 'badRequest', 400);
      assert.deepEqual(await projects(`?name=${encodeURIComponent(`tag-${tag}`)}`), []);
    }
  });

  test('a parent_id other than the project domain is refused (400): there is no project hierarchy', {}, async () => {
    const parent = await createProject({ name: 'would-be-parent' });
    const cases = [
      { name: 'child-of-project', parent_id: parent.id },
      { name: 'child-of-other-domain', parent_id: otherDomainId },
      { name: 'child-of-nothing', parent_id: 'no-such-parent' },
    ];
    for (const body of cases) {
      const res = await send('post', '/projects', { project: body });
      assert.equal(res.status, 400, `${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`);
      faultMessage(res.body, 'badRequest', 400);
      assert.deepEqual(await projects(`?name=${body.name}`), []);
    }
  });

  test('a duplicate name in the same domain is a 409; the same name in another domain is fine', async () => {
    await createProject({ name: 'dup' });
    const res = await call('post', '/projects').send({ project: { name: 'dup', description: 'second' } });
    assert.equal(res.status, 409);
    faultMessage(res.body, 'conflictingRequest', 409);
    const same = await projects('?name=dup&domain_id=default');
    assert.equal(same.length, 1);
    assert.equal(same[0]!.description, '');
    const elsewhere = await createProject({ name: 'dup', domain_id: otherDomainId });
    assert.equal(elsewhere.domain_id, otherDomainId);
  });

  test('non-admins get 403 and nothing is created', async () => {
    for (const u of [pia, rex]) {
      const res = await call('post', '/projects', u.token).send({ project: { name: 'by-non-admin' } });
      assert.equal(res.status, 403);
      faultMessage(res.body, 'forbidden', 403);
    }
    assert.deepEqual(await projects('?name=by-non-admin'), []);
  });
});

describe('GET /projects/{id}', () => {
  test('an unknown id is a 404 itemNotFound', async () => {
    const res = await call('get', '/projects/no-such-project').expect(404);
    assert.match(faultMessage(res.body, 'itemNotFound', 404), /no-such-project/);
  });

  test('a member or reader may read their own project, and another project they hold a role on', async () => {
    for (const u of [pia, rex]) {
      const res = await call('get', `/projects/${pia.projectId}`, u.token).expect(200);
      assert.equal(res.body.project.name, 'pia-project');
    }
    const second = await call('get', `/projects/${piaSecondId}`, pia.token).expect(200);
    assert.equal(second.body.project.name, 'pia-second');
  });

  test('a project the caller holds no role on is 404 to them, not 403', async () => {
    await call('get', `/projects/${piaSecondId}`, rex.token).expect(404);
    const res = await call('get', `/projects/${t.adminProjectId}`, pia.token).expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
    await call('get', '/projects/no-such-project', pia.token).expect(404);
  });

  test('GET /auth/projects lists the projects the caller holds a role on', async () => {
    const res = await call('get', '/auth/projects', pia.token).expect(200);
    assert.deepEqual(
      res.body.projects.map((p: { name: string }) => p.name),
      ['pia-project', 'pia-second'],
    );
    assert.deepEqual(res.body.links, { self: `${base}/auth/projects`, previous: null, next: null });
    const rexs = await call('get', '/auth/projects', rex.token).expect(200);
    assert.deepEqual(
      rexs.body.projects.map((p: { id: string }) => p.id),
      [pia.projectId],
    );
  });
});

describe('PATCH /projects/{id}', () => {
  test('updates name, description, enabled and tags; 200 with the full project', async () => {
    const p = await createProject({ name: 'patch-me', description: 'old', tags: ['a'] });
    const res = await call('patch', `/projects/${p.id}`)
      .send({ project: { name: 'patched', description: 'new', enabled: false, tags: ['b', 'c'] } })
      .expect(200);
    assert.deepEqual(res.body.project, {
      id: p.id,
      name: 'patched',
      domain_id: 'default',
      description: 'new',
      enabled: false,
      parent_id: 'default',
      is_domain: false,
      tags: ['b', 'c'],
      options: {},
      links: { self: `${base}/projects/${p.id}` },
    });
    assert.deepEqual((await call('get', `/projects/${p.id}`).expect(200)).body.project, res.body.project);
  });

  test('a partial update keeps other fields; extra attributes merge; id and links stay', async () => {
    const p = await createProject({ name: 'partial', description: 'keep', tags: ['x'], owner: 'team-a' });
    const res = await call('patch', `/projects/${p.id}`)
      .send({ project: { budget: 10, id: 'new-id', links: { self: 'x' }, domain_id: 'default' } })
      .expect(200);
    const u = res.body.project;
    assert.equal(u.id, p.id);
    assert.deepEqual(u.links, { self: `${base}/projects/${p.id}` });
    assert.equal(u.name, 'partial');
    assert.equal(u.description, 'keep');
    assert.deepEqual(u.tags, ['x']);
    assert.equal(u.owner, 'team-a');
    assert.equal(u.budget, 10);
  });

  test('invalid updates are 400, an unknown id 404, a taken name 409; nothing changes', async () => {
    const p = await createProject({ name: 'patch-target', description: 'original' });
    await createProject({ name: 'patch-taken' });
    const path = `/projects/${p.id}`;
    const cases: [string, string | object, number, string, RegExp][] = [
      ['malformed JSON', '{"project": {', 400, 'badRequest', /Malformed JSON/],
      ['no project key', { name: 'x' }, 400, 'badRequest', /project/],
      ['name of 256 characters', { project: { name: 'z'.repeat(256) } }, 400, 'badRequest', /255/],
      ['enabled as a string', { project: { enabled: 'false' } }, 400, 'badRequest', /enabled/],
      ['tags not an array', { project: { tags: 'x' } }, 400, 'badRequest', /tags/],
      ['move to another domain', { project: { domain_id: otherDomainId } }, 400, 'badRequest', /domain/],
      ['is_domain: true', { project: { is_domain: true } }, 400, 'badRequest', /is_domain/],
      ['taken name', { project: { name: 'patch-taken' } }, 409, 'conflictingRequest', /exists/],
    ];
    for (const [label, body, status, fault, message] of cases) {
      const res = await send('patch', path, body);
      assert.equal(res.status, status, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, fault, status), message, label);
    }
    const after = (await call('get', path).expect(200)).body.project;
    assert.equal(after.name, 'patch-target');
    assert.equal(after.description, 'original');
    assert.equal(after.domain_id, 'default');
    assert.equal(after.enabled, true);
    const missing = await call('patch', '/projects/no-such-project')
      .send({ project: { description: 'x' } })
      .expect(404);
    faultMessage(missing.body, 'itemNotFound', 404);
  });

  test('non-admins get 403, even on their own project, and nothing changes', async () => {
    for (const u of [pia, rex]) {
      const res = await call('patch', `/projects/${pia.projectId}`, u.token)
        .send({ project: { description: 'changed by a non-admin' } })
        .expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
    assert.equal((await call('get', `/projects/${pia.projectId}`).expect(200)).body.project.description, '');
  });

  test('disabling a project revokes tokens scoped to it and refuses new ones until re-enabled', async () => {
    const u = await t.makeUser({ name: 'dis', project: 'to-disable' });
    await call('get', '/auth/projects', u.token).expect(200);
    await call('patch', `/projects/${u.projectId}`)
      .send({ project: { enabled: false } })
      .expect(200);
    const revoked = await call('get', '/auth/projects', u.token).expect(401);
    faultMessage(revoked.body, 'unauthorized', 401);
    await assert.rejects(t.login('dis', u.password, 'to-disable'), /401/);
    await call('patch', `/projects/${u.projectId}`)
      .send({ project: { enabled: true } })
      .expect(200);
    const fresh = await t.login('dis', u.password, 'to-disable');
    await call('get', '/auth/projects', fresh).expect(200);
    await call('get', '/auth/projects', u.token).expect(401);
  });
});

describe('DELETE /projects/{id}', () => {
  test('204; the project is gone from GET and the list; deleting again is a 404', async () => {
    const p = await createProject({ name: 'doomed' });
    const res = await call('delete', `/projects/${p.id}`).expect(204);
    assert.equal(res.text, '');
    const gone = await call('get', `/projects/${p.id}`).expect(404);
    faultMessage(gone.body, 'itemNotFound', 404);
    assert.deepEqual(await projects('?name=doomed'), []);
    await call('delete', `/projects/${p.id}`).expect(404);
    const unknown = await call('delete', '/projects/no-such-project').expect(404);
    faultMessage(unknown.body, 'itemNotFound', 404);
  });

  test("removes the project's role assignments and revokes tokens scoped to it", async () => {
    const u = await t.makeUser({ name: 'del', project: 'to-delete' });
    const second = await createProject({ name: 'del-keeps' });
    await call('put', `/projects/${second.id}/users/${u.userId}/roles/${memberRoleId}`).expect(204);
    const assignments = async (q: string) =>
      (await call('get', `/role_assignments?${q}`).expect(200)).body.role_assignments;
    assert.equal((await assignments(`scope.project.id=${u.projectId}`)).length, 1);

    await call('delete', `/projects/${u.projectId}`).expect(204);
    assert.deepEqual(await assignments(`scope.project.id=${u.projectId}`), []);
    const left = await assignments(`user.id=${u.userId}`);
    assert.deepEqual(
      left.map((a: { scope: { project: { id: string } } }) => a.scope.project.id),
      [second.id],
    );
    const userProjects = (await call('get', `/users/${u.userId}/projects`).expect(200)).body.projects;
    assert.deepEqual(
      userProjects.map((p: { id: string }) => p.id),
      [second.id],
    );
    await call('get', '/auth/projects', u.token).expect(401);
    await assert.rejects(t.login('del', u.password, 'to-delete'), /401/);
    // The user survives the project.
    await call('get', `/users/${u.userId}`).expect(200);
  });

  test('non-admins get 403, even on their own project, and it stays', async () => {
    for (const u of [pia, rex]) {
      const res = await call('delete', `/projects/${pia.projectId}`, u.token).expect(403);
      faultMessage(res.body, 'forbidden', 403);
    }
    await call('get', `/projects/${pia.projectId}`).expect(200);
    await call('get', '/auth/projects', pia.token).expect(200);
  });
});

describe('without a valid token', () => {
  test('every project route is a 401 and changes nothing', async () => {
    const p = await createProject({ name: 'token-probe' });
    const routes: [Method, string, object?][] = [
      ['get', '/projects'],
      ['post', '/projects', { project: { name: 'anonymous' } }],
      ['get', `/projects/${p.id}`],
      ['patch', `/projects/${p.id}`, { project: { description: 'anonymous' } }],
      ['delete', `/projects/${p.id}`],
      ['get', '/auth/projects'],
    ];
    for (const token of [null, 'garbage']) {
      for (const [method, path, body] of routes) {
        const req = call(method, path, token);
        const res = await (body ? req.send(body) : req);
        assert.equal(res.status, 401, `${method} ${path} with ${token}: ${res.status}`);
        faultMessage(res.body, 'unauthorized', 401);
      }
    }
    assert.equal((await call('get', `/projects/${p.id}`).expect(200)).body.project.description, '');
    assert.deepEqual(await projects('?name=anonymous'), []);
  });
});
