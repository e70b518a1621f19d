import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BackendError } from '../../backends/errors.ts';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

let f: ShareFixture;
before(async () => {
  f = await shareFixture();
});
after(() => f.t.close());

const http = () => f.t.http();

function allow(shareId: string, rule: Record<string, unknown>, token = f.alice.token) {
  return f.action(shareId, { allow_access: { access_type: 'ip', ...rule } }, token);
}

async function getRule(id: string, token = f.alice.token) {
  return http().get(`/v2/share-access-rules/${id}`).set(f.as(token));
}

describe('allow and deny', () => {
  test('queued_to_apply → active; the share syncs; the backend gets the whole set in one call', async () => {
    const id = await f.newShare();
    const first = await allow(id, {
      access_to: '10.0.0.0/24',
      access_level: 'ro',
      metadata: { owner: 'me' },
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const rule = first.body.access as Record<string, unknown>;
    assert.deepEqual(
      [rule.share_id, rule.access_type, rule.access_to, rule.access_level, rule.state, rule.access_key],
      [id, 'ip', '10.0.0.0/24', 'ro', 'queued_to_apply', null],
    );
    assert.deepEqual(rule.metadata, { owner: 'me' });
    assert.equal((await f.getShare(id)).access_rules_status, 'syncing');
    const old = await http().get(`/v2/shares/${id}`).set(f.as(f.alice.token, '2.27')).expect(200);
    assert.equal(old.body.share.access_rules_status, 'out_of_sync');

    const second = await allow(id, { access_to: '192.168.1.7' });
    assert.equal(second.body.access.access_level, 'rw', 'rw is the default level');
    const callsBefore = f.t.memory.calls.filter((c) => c.op === 'updateAccess').length;
    await f.drain();
    const calls = f.t.memory.calls.filter((c) => c.op === 'updateAccess').length - callsBefore;
    assert.equal(calls, 1, 'both queued rules went to the backend in one call');
    assert.deepEqual(
      f.t.memory
        .share(id)
        ?.accessRules.map((r) => r.accessTo)
        .sort(),
      ['10.0.0.0/24', '192.168.1.7'],
    );
    const shown = await getRule(rule.id as string);
    assert.equal(shown.status, 200);
    assert.equal(shown.body.access.state, 'active');
    assert.equal((await f.getShare(id)).access_rules_status, 'active');

    const denied = await f.action(id, { deny_access: { access_id: rule.id } });
    assert.equal(denied.status, 202);
    assert.equal((await getRule(rule.id as string)).body.access.state, 'queued_to_deny');
    assert.equal((await f.getShare(id)).access_rules_status, 'syncing');
    await f.drain();
    assert.equal((await getRule(rule.id as string)).status, 404);
    assert.deepEqual(
      f.t.memory.share(id)?.accessRules.map((r) => r.accessTo),
      ['192.168.1.7'],
    );
    assert.equal((await f.getShare(id)).access_rules_status, 'active');
  });

  test('a rule denied while it is being applied ends up removed', async () => {
    const id = await f.newShare();
    const a = (await allow(id, { access_to: '10.1.0.0/16' })).body.access.id;
    // The first task's backend call is slow; the deny lands while it runs.
    f.t.memory.inject({ op: 'updateAccess', id, delayMs: 200, times: 1 });
    const run = f.drain();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await f.action(id, { deny_access: { access_id: a } })).status, 202);
    await run;
    await f.drain();
    assert.equal((await getRule(a)).status, 404);
    assert.deepEqual(f.t.memory.share(id)?.accessRules, []);
    assert.equal((await f.getShare(id)).access_rules_status, 'active');
  });

  test('ip rules are validated and normalised; 0.0.0.0/0 is allowed with a warning in the log', async () => {
    const id = await f.newShare();
    for (const [to, pattern] of [
      ['10.0.0.300', /not a valid IPv4 or IPv6/],
      ['10.1', /not a valid IPv4 or IPv6/],
      ['::1/129', /prefix length must be a whole number from 0 to 128/],
      ['10.0.0.0/33', /from 0 to 32/],
      ['10.0.0.5/24', /host bits set; did you mean 10\.0\.0\.0\/24/],
      ['fe80::1%eth0', /not a valid/],
      ['10.0.0.0/24/8', /more than one/],
      ['', /access_to/],
    ] as const) {
      const res = await allow(id, { access_to: to });
      assert.match(faultMessage(res.body, 'badRequest', 400), pattern, to);
    }
    const v6 = await allow(id, { access_to: '2001:DB8:0:0::1' });
    assert.equal(v6.body.access.access_to, '2001:db8::1');
    const host = await allow(id, { access_to: '10.9.9.9/32' });
    assert.equal(host.body.access.access_to, '10.9.9.9');
    const world = await allow(id, { access_to: '0.0.0.0/0' });
    assert.equal(world.status, 200);
    assert.ok(f.t.logs.some((l) => /opens the share to every address/.test(String(l.msg))));
    const list = await http()
      .get(`/v2/share-access-rules?share_id=${id}`)
      .set(f.as(f.alice.token))
      .expect(200);
    assert.equal(list.body.access_list.length, 3, 'refused rules left nothing behind');
    await f.drain();
  });

  test('duplicates are 400, whatever the level; a rule being removed must be gone first', async () => {
    const id = await f.newShare();
    const r = (await allow(id, { access_to: '10.2.0.0/16', access_level: 'ro' })).body.access.id;
    const dup = await allow(id, { access_to: '10.2.0.0/16', access_level: 'rw' });
    assert.match(faultMessage(dup.body, 'badRequest', 400), new RegExp(`already has access rule ${r}`));
    await f.drain();
    await f.action(id, { deny_access: { access_id: r } });
    const again = await allow(id, { access_to: '10.2.0.0/16' });
    assert.match(faultMessage(again.body, 'badRequest', 400), /being removed/);
    await f.drain();
    assert.equal((await allow(id, { access_to: '10.2.0.0/16' })).status, 200);
    await f.drain();
  });

  test('user, cert and cephx rules: validated, and accepted where the backend honours them', async () => {
    const id = await f.newShare();
    for (const [type, to, pattern] of [
      ['user', 'bob', /4 to 255/],
      ['user', 'no spaces', /not a valid user name/],
      ['cephx', 'client.alice', /without '\.'/],
      ['cert', 'x'.repeat(65), /1 to 64/],
      ['kerberos', 'x', /access_type.*ip, user, cert, cephx/],
    ] as const) {
      const res = await allow(id, { access_type: type, access_to: to });
      assert.match(faultMessage(res.body, 'badRequest', 400), pattern, `${type}:${to}`);
    }
    for (const [type, to] of [
      ['user', 'DOMAIN\\alice'],
      ['cert', 'client.example.com'],
      ['cephx', 'alice'],
    ])
      assert.equal((await allow(id, { access_type: type, access_to: to })).status, 200);
    await f.drain();
    assert.equal((await f.getShare(id)).access_rules_status, 'active');
  });

  test('bad bodies: level, unknown fields, deny of an unknown or another share’s rule', async () => {
    const id = await f.newShare();
    const level = await allow(id, { access_to: '10.3.0.1', access_level: 'rwx' });
    assert.match(faultMessage(level.body, 'badRequest', 400), /rw or ro/);
    const extra = await allow(id, { access_to: '10.3.0.1', lock_deletion: true });
    assert.match(faultMessage(extra.body, 'badRequest', 400), /lock_deletion/);
    const other = await f.newShare();
    const r = (await allow(other, { access_to: '10.3.0.2' })).body.access.id;
    const wrong = await f.action(id, { deny_access: { access_id: r } });
    assert.match(faultMessage(wrong.body, 'itemNotFound', 404), new RegExp(`on share ${id}`));
    const unknown = await f.action(id, { deny_access: { access_id: 'nope' } });
    faultMessage(unknown.body, 'itemNotFound', 404);
    const empty = await f.action(id, { deny_access: {} });
    assert.match(faultMessage(empty.body, 'badRequest', 400), /access_id/);
    await f.drain();
  });

  test('a share that is not available cannot get new rules', async () => {
    const id = await f.newShare();
    await f.action(id, { extend: { new_size: 2 } });
    const res = await allow(id, { access_to: '10.4.0.1' });
    assert.match(faultMessage(res.body, 'badRequest', 400), /'extending'/);
    await f.drain();
  });

  test('a backend failure puts the rules in error, the share’s access_rules_status too, with a message', async () => {
    const id = await f.newShare();
    const r = (await allow(id, { access_to: '10.5.0.1' })).body.access.id;
    f.t.memory.inject({
      op: 'updateAccess',
      id,
      error: new BackendError('Failed', 'exports table locked'),
      times: 1,
    });
    await f.drain();
    assert.equal((await getRule(r)).body.access.state, 'error');
    assert.equal((await f.getShare(id)).access_rules_status, 'error');
    const msgs = await http().get(`/v2/messages?resource_id=${id}`).set(f.as(f.alice.token)).expect(200);
    assert.match(msgs.body.messages[0].user_message, /exports table locked/);
    // Denying the broken rule cleans it up.
    await f.action(id, { deny_access: { access_id: r } });
    await f.drain();
    assert.equal((await getRule(r)).status, 404);
    assert.equal((await f.getShare(id)).access_rules_status, 'active');
  });
});

describe('listing, showing and metadata', () => {
  test('GET /v2/share-access-rules?share_id= (2.45+) and the access_list action', async () => {
    const id = await f.newShare();
    await allow(id, { access_to: '10.6.0.1', metadata: { team: 'a' } });
    await allow(id, { access_to: '10.6.0.2', metadata: { team: 'b' } });
    await f.drain();
    const list = await http()
      .get(`/v2/share-access-rules?share_id=${id}`)
      .set(f.as(f.reader.token))
      .expect(200);
    assert.deepEqual(
      list.body.access_list.map((r: { access_to: string }) => r.access_to),
      ['10.6.0.1', '10.6.0.2'],
    );
    assert.equal(list.body.access_list[0].share_id, undefined, 'list items carry no share_id');
    const filtered = await http()
      .get(`/v2/share-access-rules?share_id=${id}&metadata=${encodeURIComponent("{'team': 'b'}")}`)
      .set(f.as(f.alice.token))
      .expect(200);
    assert.deepEqual(
      filtered.body.access_list.map((r: { access_to: string }) => r.access_to),
      ['10.6.0.2'],
    );
    const missing = await http().get('/v2/share-access-rules').set(f.as(f.alice.token));
    assert.match(faultMessage(missing.body, 'badRequest', 400), /share_id/);
    const tooOld = await http().get(`/v2/share-access-rules?share_id=${id}`).set(f.as(f.alice.token, '2.44'));
    assert.match(faultMessage(tooOld.body, 'itemNotFound', 404), /2\.45/);
    const action = await f.action(id, { access_list: null }, f.reader.token);
    assert.equal(action.status, 200);
    assert.equal((action.body.access_list as unknown[]).length, 2);
    const legacy = await http()
      .post(`/v2/shares/${id}/action`)
      .set(f.as(f.alice.token, '2.6'))
      .send({ 'os-access_list': null })
      .expect(200);
    assert.deepEqual(Object.keys(legacy.body.access_list[0]).sort(), [
      'access_level',
      'access_to',
      'access_type',
      'id',
      'state',
    ]);
  });

  test('metadata: set merges, delete removes, a missing key is 404', async () => {
    const id = await f.newShare();
    const r = (await allow(id, { access_to: '10.7.0.1', metadata: { a: '1' } })).body.access.id;
    const set = await http()
      .put(`/v2/share-access-rules/${r}/metadata`)
      .set(f.as(f.alice.token))
      .send({ metadata: { b: '2' } })
      .expect(200);
    assert.deepEqual(set.body.metadata, { a: '1', b: '2' });
    await http().delete(`/v2/share-access-rules/${r}/metadata/a`).set(f.as(f.alice.token)).expect(200);
    assert.deepEqual((await getRule(r)).body.access.metadata, { b: '2' });
    await http().delete(`/v2/share-access-rules/${r}/metadata/a`).set(f.as(f.alice.token)).expect(404);
    const bad = await http()
      .put(`/v2/share-access-rules/${r}/metadata`)
      .set(f.as(f.alice.token))
      .send({ metadata: { k: 'v'.repeat(1024) } });
    assert.match(faultMessage(bad.body, 'badRequest', 400), /1023/);
    await f.drain();
  });

  test('readers read but cannot change; another project sees nothing', async () => {
    const id = await f.newShare();
    const r = (await allow(id, { access_to: '10.8.0.1' })).body.access.id;
    await f.drain();
    faultMessage((await allow(id, { access_to: '10.8.0.2' }, f.reader.token)).body, 'forbidden', 403);
    faultMessage(
      (await f.action(id, { deny_access: { access_id: r } }, f.reader.token)).body,
      'forbidden',
      403,
    );
    assert.equal((await getRule(r, f.reader.token)).status, 200);
    await http()
      .put(`/v2/share-access-rules/${r}/metadata`)
      .set(f.as(f.reader.token))
      .send({ metadata: { x: 'y' } })
      .expect(403);
    faultMessage((await allow(id, { access_to: '10.8.0.3' }, f.bob.token)).body, 'itemNotFound', 404);
    assert.equal((await getRule(r, f.bob.token)).status, 404);
    // A share the caller cannot find, as a list filter: Manila's 400 (nothing about the share leaks).
    await http().get(`/v2/share-access-rules?share_id=${id}`).set(f.as(f.bob.token)).expect(400);
    await http().delete(`/v2/share-access-rules/${r}/metadata/x`).set(f.as(f.bob.token)).expect(404);
    assert.equal((await getRule(r)).body.access.state, 'active');
  });
});

describe('a backend that honours only ip rules', () => {
  test('user, cert and cephx rules are refused with a 400 naming what it supports', async () => {
    const g = await shareFixture({ memory: { capabilities: { accessTypes: ['ip'] } } });
    try {
      const id = await g.newShare();
      for (const [type, to] of [
        ['user', 'alice-user'],
        ['cert', 'client.example.com'],
        ['cephx', 'alice'],
      ]) {
        const res = await g.action(id, { allow_access: { access_type: type, access_to: to } });
        assert.match(
          faultMessage(res.body, 'badRequest', 400),
          new RegExp(`cannot enforce '${type}'.*supports: ip`),
        );
      }
      const ok = await g.action(id, { allow_access: { access_type: 'ip', access_to: '10.0.0.1' } });
      assert.equal(ok.status, 200);
    } finally {
      await g.t.close();
    }
  });
});
