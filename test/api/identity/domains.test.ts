import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage, makeTestApp, type TestApp, type TestUser } from '../../helpers/app.ts';
import { identityRequests, type Method, V3 } from '../../helpers/identity.ts';

let t: TestApp;
let admin: string;
let base: string;
let dora: TestUser;

before(async () => {
  t = await makeTestApp();
  admin = await t.adminToken();
  base = `${t.config.publicUrl}${V3}`;
  dora = await t.makeUser({ name: 'dora', project: 'dora-project', role: 'member' });
});
after(() => t.close());

const { call } = identityRequests(
  () => t,
  () => admin,
);

async function domains(query = ''): Promise<Record<string, unknown>[]> {
  return (await call('get', `/domains${query}`).expect(200)).body.domains;
}

async function createDomain(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await call('post', '/domains').send({ domain: body }).expect(201)).body.domain;
}

function tokenBody(user: string, domainId: string, password: string, projectId?: string) {
  return {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: user, domain: { id: domainId }, password } },
      },
      ...(projectId ? { scope: { project: { id: projectId } } } : {}),
    },
  };
}

describe('GET /domains', () => {
  test('lists every domain with Keystone fields and collection links', async () => {
    const res = await call('get', '/domains').expect(200);
    assert.deepEqual(res.body.links, { self: `${base}/domains`, previous: null, next: null });
    const dflt = res.body.domains.find((d: { id: string }) => d.id === 'default');
    assert.deepEqual(dflt, {
      id: 'default',
      name: 'Default',
      description: 'The default domain',
      enabled: true,
      tags: [],
      options: {},
      links: { self: `${base}/domains/default` },
    });
  });

  test('?name= and ?enabled= filter the list', async () => {
    const on = await createDomain({ name: 'filter-on' });
    const off = await createDomain({ name: 'filter-off', enabled: false });
    assert.deepEqual(
      (await domains('?name=filter-on')).map((d) => d.id),
      [on.id],
    );
    assert.deepEqual(await domains('?name=no-such-domain'), []);
    const disabled = (await domains('?enabled=false')).map((d) => d.id);
    assert.ok(disabled.includes(off.id));
    assert.ok(!disabled.includes(on.id) && !disabled.includes('default'));
    const enabled = (await domains('?enabled=true')).map((d) => d.id);
    assert.ok(enabled.includes(on.id) && enabled.includes('default'));
    assert.ok(!enabled.includes(off.id));
    assert.deepEqual(
      (await domains('?name=filter-off&enabled=true')).map((d) => d.id),
      [],
    );
  });

  test('a malformed ?enabled= is a 400', async () => {
    const res = await call('get', '/domains?enabled=perhaps').expect(400);
    assert.match(faultMessage(res.body, 'badRequest', 400), /enabled/);
  });

  test('listing domains is admin-only, as in Keystone (403); a non-admin may still read their own', async () => {
    await createDomain({ name: 'not-doras' });
    const res = await call('get', '/domains', dora.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
    const own = await call('get', '/domains/default', dora.token).expect(200);
    assert.equal(own.body.domain.id, 'default');
  });
});

describe('POST /domains', () => {
  test('201 with the full domain; GET and the list return the same', async () => {
    const res = await call('post', '/domains')
      .send({ domain: { name: 'acme', description: 'Acme Corp', enabled: true } })
      .expect(201);
    const d = res.body.domain;
    assert.match(d.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(d, {
      id: d.id,
      name: 'acme',
      description: 'Acme Corp',
      enabled: true,
      tags: [],
      options: {},
      links: { self: `${base}/domains/${d.id}` },
    });
    assert.deepEqual((await call('get', `/domains/${d.id}`).expect(200)).body, { domain: d });
    assert.deepEqual(await domains('?name=acme'), [d]);
  });

  test('defaults: enabled, empty description; enabled: false is kept', async () => {
    const plain = await createDomain({ name: 'plain' });
    assert.equal(plain.enabled, true);
    assert.equal(plain.description, '');
    const off = await createDomain({ name: 'born-disabled', enabled: false });
    assert.equal(off.enabled, false);
    assert.equal((await call('get', `/domains/${off.id}`).expect(200)).body.domain.enabled, false);
  });

  test('unknown attributes are stored and returned; id and links in the body are ignored', async () => {
    const res = await call('post', '/domains')
      .send({
        domain: {
          name: 'extra-attrs',
          id: 'chosen-by-client',
          links: { self: 'http://evil.example/domains/x' },
          contact: 'ops@example.com',
          cost_center: { code: 42 },
        },
      })
      .expect(201);
    const d = res.body.domain;
    assert.notEqual(d.id, 'chosen-by-client');
    assert.deepEqual(d.links, { self: `${base}/domains/${d.id}` });
    assert.equal(d.contact, 'ops@example.com');
    assert.deepEqual(d.cost_center, { code: 42 });
    const shown = (await call('get', `/domains/${d.id}`).expect(200)).body.domain;
    assert.equal(shown.contact, 'ops@example.com');
    assert.deepEqual(shown.cost_center, { code: 42 });
    await call('get', '/domains/chosen-by-client').expect(404);
  });

  test('a name of exactly 255 characters is accepted', async () => {
    const d = await createDomain({ name: 'n'.repeat(255) });
    assert.equal(d.name, 'n'.repeat(255));
  });

  test('invalid bodies are 400 and create nothing', async () => {
    const beforeList = await domains();
    const cases: [string, string | object, RegExp][] = [
      ['malformed JSON', '{"domain": {"name": "x"', /Malformed JSON/],
      ['empty object', {}, /domain/],
      ['domain not an object', { domain: 'x' }, /domain/],
      ['missing name', { domain: { description: 'no name' } }, /name/],
      ['empty name', { domain: { name: '' } }, /name/],
      ['blank name', { domain: { name: '   ' } }, /name/],
      ['name of 256 characters', { domain: { name: 'x'.repeat(256) } }, /name.*255/],
      ['name not a string', { domain: { name: 12 } }, /name/],
      ['enabled as a string', { domain: { name: 'bad-enabled', enabled: 'yes' } }, /enabled/],
      ['enabled as a number', { domain: { name: 'bad-enabled-2', enabled: 1 } }, /enabled/],
      ['description not a string', { domain: { name: 'bad-desc', description: 5 } }, /description/],
      ['an array body', [{ domain: { name: 'in-array' } }], /body/],
    ];
    for (const [label, body, message] of cases) {
      const req = call('post', '/domains').set('Content-Type', 'application/json');
      const res = await req.send(typeof body === 'string' ? body : JSON.stringify(body));
      assert.equal(res.status, 400, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, 'badRequest', 400), message, label);
    }
    assert.deepEqual(await domains(), beforeList, 'no domain was created');
  });

  test('a duplicate name is a 409 conflictingRequest and creates nothing', async () => {
    await createDomain({ name: 'twice' });
    const res = await call('post', '/domains')
      .send({ domain: { name: 'twice', description: 'second' } })
      .expect(409);
    faultMessage(res.body, 'conflictingRequest', 409);
    const same = await domains('?name=twice');
    assert.equal(same.length, 1);
    assert.equal(same[0]!.description, '');
    const dflt = await call('post', '/domains')
      .send({ domain: { name: 'Default' } })
      .expect(409);
    faultMessage(dflt.body, 'conflictingRequest', 409);
  });

  test('a non-admin gets 403 and nothing is created', async () => {
    const res = await call('post', '/domains', dora.token)
      .send({ domain: { name: 'doras-domain' } })
      .expect(403);
    faultMessage(res.body, 'forbidden', 403);
    assert.deepEqual(await domains('?name=doras-domain'), []);
  });
});

describe('GET /domains/{id}', () => {
  test('an unknown id is a 404 itemNotFound', async () => {
    const res = await call('get', '/domains/no-such-domain').expect(404);
    assert.match(faultMessage(res.body, 'itemNotFound', 404), /no-such-domain/);
  });

  test('a non-admin may read their own domain; another domain is 404, not 403', async () => {
    const own = await call('get', '/domains/default', dora.token).expect(200);
    assert.equal(own.body.domain.name, 'Default');
    const other = await createDomain({ name: 'hidden-from-dora' });
    const res = await call('get', `/domains/${other.id}`, dora.token).expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
    await call('get', '/domains/no-such-domain', dora.token).expect(404);
  });
});

describe('PATCH /domains/{id}', () => {
  test('updates name, description and enabled; 200 with the full domain', async () => {
    const d = await createDomain({ name: 'before-rename', description: 'old' });
    const res = await call('patch', `/domains/${d.id}`)
      .send({ domain: { name: 'after-rename', description: 'new', enabled: false } })
      .expect(200);
    assert.deepEqual(res.body.domain, {
      id: d.id,
      name: 'after-rename',
      description: 'new',
      enabled: false,
      tags: [],
      options: {},
      links: { self: `${base}/domains/${d.id}` },
    });
    assert.deepEqual((await call('get', `/domains/${d.id}`).expect(200)).body.domain, res.body.domain);
    assert.deepEqual(await domains('?name=before-rename'), []);
  });

  test('a partial update leaves other fields; extra attributes merge; id and links stay', async () => {
    const d = await createDomain({ name: 'partial', description: 'keep me', contact: 'a@example.com' });
    const res = await call('patch', `/domains/${d.id}`)
      .send({ domain: { region: 'eu', id: 'other-id', links: { self: 'http://evil.example/' } } })
      .expect(200);
    const u = res.body.domain;
    assert.equal(u.id, d.id);
    assert.deepEqual(u.links, { self: `${base}/domains/${d.id}` });
    assert.equal(u.name, 'partial');
    assert.equal(u.description, 'keep me');
    assert.equal(u.contact, 'a@example.com');
    assert.equal(u.region, 'eu');
    const cleared = await call('patch', `/domains/${d.id}`)
      .send({ domain: { description: null } })
      .expect(200);
    assert.equal(cleared.body.domain.description, '');
  });

  test('invalid updates are 400, an unknown id 404, a taken name 409; nothing changes', async () => {
    const d = await createDomain({ name: 'patch-target', description: 'original' });
    await createDomain({ name: 'patch-taken' });
    const path = `/domains/${d.id}`;
    const cases: [string, string | object, number, string, RegExp][] = [
      ['malformed JSON', '{"domain": ', 400, 'badRequest', /Malformed JSON/],
      ['no domain key', {}, 400, 'badRequest', /domain/],
      ['name of 256 characters', { domain: { name: 'y'.repeat(256) } }, 400, 'badRequest', /255/],
      ['empty name', { domain: { name: '' } }, 400, 'badRequest', /name/],
      ['enabled as a string', { domain: { enabled: 'no' } }, 400, 'badRequest', /enabled/],
      ['taken name', { domain: { name: 'patch-taken' } }, 409, 'conflictingRequest', /exists/],
    ];
    for (const [label, body, status, fault, message] of cases) {
      const res = await call('patch', path)
        .set('Content-Type', 'application/json')
        .send(typeof body === 'string' ? body : JSON.stringify(body));
      assert.equal(res.status, status, `${label}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, fault, status), message, label);
    }
    const after = (await call('get', path).expect(200)).body.domain;
    assert.equal(after.name, 'patch-target');
    assert.equal(after.description, 'original');
    assert.equal(after.enabled, true);
    const missing = await call('patch', '/domains/no-such-domain')
      .send({ domain: { description: 'x' } })
      .expect(404);
    faultMessage(missing.body, 'itemNotFound', 404);
  });

  test('the default domain cannot be disabled (403) and stays enabled', async () => {
    const res = await call('patch', '/domains/default')
      .send({ domain: { enabled: false } })
      .expect(403);
    assert.match(faultMessage(res.body, 'forbidden', 403), /default domain/);
    assert.equal((await call('get', '/domains/default').expect(200)).body.domain.enabled, true);
    // Logins in the default domain keep working.
    await t.login('dora', dora.password, 'dora-project');
  });

  test('a non-admin gets 403, even on their own domain, and nothing changes', async () => {
    const res = await call('patch', '/domains/default', dora.token)
      .send({ domain: { description: 'dora was here' } })
      .expect(403);
    faultMessage(res.body, 'forbidden', 403);
    assert.equal(
      (await call('get', '/domains/default').expect(200)).body.domain.description,
      'The default domain',
    );
  });

  test("disabling a domain revokes its users' tokens and refuses new ones until re-enabled", async () => {
    const d = await createDomain({ name: 'to-disable' });
    const p = (
      await call('post', '/projects')
        .send({ project: { name: 'p-in-to-disable', domain_id: d.id } })
        .expect(201)
    ).body.project;
    const u = (
      await call('post', '/users')
        .send({ user: { name: 'u-in-to-disable', domain_id: d.id, password: 'pw-to-disable' } })
        .expect(201)
    ).body.user;
    const member = (await call('get', '/roles?name=member').expect(200)).body.roles[0];
    await call('put', `/projects/${p.id}/users/${u.id}/roles/${member.id}`).expect(204);
    const body = tokenBody('u-in-to-disable', d.id as string, 'pw-to-disable', p.id);
    const login = await t.http().post(`${V3}/auth/tokens`).send(body).expect(201);
    const token = login.headers['x-subject-token'] as string;
    await call('get', '/auth/projects', token).expect(200);

    await call('patch', `/domains/${d.id}`)
      .send({ domain: { enabled: false } })
      .expect(200);
    const revoked = await call('get', '/auth/projects', token).expect(401);
    faultMessage(revoked.body, 'unauthorized', 401);
    const refused = await t.http().post(`${V3}/auth/tokens`).send(body).expect(401);
    faultMessage(refused.body, 'unauthorized', 401);

    await call('patch', `/domains/${d.id}`)
      .send({ domain: { enabled: true } })
      .expect(200);
    const again = await t.http().post(`${V3}/auth/tokens`).send(body).expect(201);
    await call('get', '/auth/projects', again.headers['x-subject-token'] as string).expect(200);
    await call('get', '/auth/projects', token).expect(401);
  });
});

describe('DELETE /domains/{id}', () => {
  test('an enabled domain cannot be deleted (403); disabled, it is deleted (204) and gone', async () => {
    const d = await createDomain({ name: 'doomed' });
    const enabled = await call('delete', `/domains/${d.id}`).expect(403);
    assert.match(faultMessage(enabled.body, 'forbidden', 403), /enabled/);
    assert.equal((await call('get', `/domains/${d.id}`).expect(200)).body.domain.name, 'doomed');

    await call('patch', `/domains/${d.id}`)
      .send({ domain: { enabled: false } })
      .expect(200);
    const res = await call('delete', `/domains/${d.id}`).expect(204);
    assert.equal(res.text, '');
    await call('get', `/domains/${d.id}`).expect(404);
    assert.deepEqual(await domains('?name=doomed'), []);
    const again = await call('delete', `/domains/${d.id}`).expect(404);
    faultMessage(again.body, 'itemNotFound', 404);
  });

  test('the name of a deleted domain can be used again', async () => {
    const d = await createDomain({ name: 'reborn', enabled: false });
    await call('delete', `/domains/${d.id}`).expect(204);
    const again = await createDomain({ name: 'reborn' });
    assert.notEqual(again.id, d.id);
  });

  test('the default domain cannot be deleted (403) and is still there', async () => {
    const res = await call('delete', '/domains/default').expect(403);
    assert.match(faultMessage(res.body, 'forbidden', 403), /default domain/);
    await call('get', '/domains/default').expect(200);
  });

  test('an unknown id is a 404', async () => {
    const res = await call('delete', '/domains/no-such-domain').expect(404);
    faultMessage(res.body, 'itemNotFound', 404);
  });

  test('a disabled domain that still owns projects or users is a 409 and stays', async () => {
    const d = await createDomain({ name: 'still-owns' });
    await call('post', '/projects')
      .send({ project: { name: 'owned', domain_id: d.id } })
      .expect(201);
    await call('patch', `/domains/${d.id}`)
      .send({ domain: { enabled: false } })
      .expect(200);
    const res = await call('delete', `/domains/${d.id}`).expect(409);
    faultMessage(res.body, 'conflictingRequest', 409);
    await call('get', `/domains/${d.id}`).expect(200);
    assert.equal((await call('get', `/projects?domain_id=${d.id}`).expect(200)).body.projects.length, 1);
  });

  test('a non-admin gets 403 and the domain stays', async () => {
    const d = await createDomain({ name: 'dora-cannot-delete', enabled: false });
    const res = await call('delete', `/domains/${d.id}`, dora.token).expect(403);
    faultMessage(res.body, 'forbidden', 403);
    await call('get', `/domains/${d.id}`).expect(200);
  });
});

describe('without a valid token', () => {
  test('every domain route is a 401', async () => {
    const d = await createDomain({ name: 'token-probe', enabled: false });
    const routes: [Method, string, object?][] = [
      ['get', '/domains'],
      ['post', '/domains', { domain: { name: 'anonymous' } }],
      ['get', `/domains/${d.id}`],
      ['patch', `/domains/${d.id}`, { domain: { description: 'anonymous' } }],
      ['delete', `/domains/${d.id}`],
    ];
    for (const token of [null, 'garbage']) {
      for (const [method, path, body] of routes) {
        const req = call(method, path, token);
        const res = await (body ? req.send(body) : req);
        assert.equal(res.status, 401, `${method} ${path} with ${token}: ${res.status}`);
        faultMessage(res.body, 'unauthorized', 401);
      }
    }
    const after = (await call('get', `/domains/${d.id}`).expect(200)).body.domain;
    assert.equal(after.description, '');
    assert.deepEqual(await domains('?name=anonymous'), []);
  });
});
