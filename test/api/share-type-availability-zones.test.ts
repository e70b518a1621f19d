import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createMemoryBackend } from '../../backends/memory.ts';
import { faultMessage } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

/**
 * A share type's `availability_zones` extra spec (Manila 2.48), with two backends in zones az1 and
 * az2: stored without blanks around its commas, the type list's extra_specs filter on it, a zone
 * asked for outside the type's is a 400 from 2.48, the scheduler keeps to the type's zones from
 * 2.48 and ignores them below. The plugin's test_share_type_availability_zones checks the same.
 */
let f: ShareFixture;
before(async () => {
  f = await shareFixture({
    backends: [
      { backend: createMemoryBackend({ name: 'mem-a' }), availabilityZone: 'az1' },
      { backend: createMemoryBackend({ name: 'mem-b' }), availabilityZone: 'az2' },
    ],
  });
});
after(() => f.t.close());

const http = () => f.t.http();

async function makeType(name: string, specs: Record<string, string> = {}) {
  const res = await http()
    .post('/v2/types')
    .set(f.as(f.admin))
    .send({ share_type: { name, extra_specs: { driver_handles_share_servers: 'False', ...specs } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.share_type as { id: string; extra_specs: Record<string, string> };
}

async function createShare(type: string, version: string, zone?: string) {
  return http()
    .post('/v2/shares')
    .set(f.as(f.alice.token, version))
    .send({ share: { size: 1, share_proto: 'NFS', share_type: type, availability_zone: zone } });
}

describe("a share type's availability zones", () => {
  test('the spec is stored without blanks around its commas, on create and on update', async () => {
    for (const [i, spec] of ['az1,     az2, az 3  ', 'az1,az2,az 3', 'az1   ,az2,   az 3'].entries()) {
      const t = await makeType(`az-spec-${i}`, { availability_zones: spec });
      assert.equal(t.extra_specs.availability_zones, 'az1,az2,az 3');
      const shown = await http().get(`/v2/types/${t.id}`).set(f.as(f.admin)).expect(200);
      assert.equal(shown.body.share_type.extra_specs.availability_zones, 'az1,az2,az 3');
    }
    // An empty entry is refused (Manila's 400), on create as on update.
    for (const spec of ['az1,     az2, az 3,  ', 'az1,,az 3', ',az2,  az 3']) {
      const res = await http()
        .post('/v2/types')
        .set(f.as(f.admin))
        .send({
          share_type: {
            name: 'az-spec-bad',
            extra_specs: { driver_handles_share_servers: 'False', availability_zones: spec },
          },
        });
      assert.match(faultMessage(res.body, 'badRequest', 400), /availability_zones/, spec);
    }
    const t = await makeType('az-spec-update');
    const bad = await http()
      .put(`/v2/types/${t.id}/extra_specs/availability_zones`)
      .set(f.as(f.admin))
      .send({ availability_zones: 'az1,' });
    faultMessage(bad.body, 'badRequest', 400);
    await http()
      .put(`/v2/types/${t.id}/extra_specs/availability_zones`)
      .set(f.as(f.admin))
      .send({ availability_zones: ' az2 ,az1 ' })
      .expect(200);
    const specs = await http().get(`/v2/types/${t.id}/extra_specs`).set(f.as(f.admin)).expect(200);
    assert.equal(specs.body.extra_specs.availability_zones, 'az2,az1');
  });

  test('the list filter finds the types usable in every zone asked for, and those without the spec', async () => {
    const some = await makeType('az-some', { availability_zones: 'az1, az2, az 3' });
    const any = await makeType('az-any');
    const other = await makeType('az-other', { availability_zones: 'az9' });
    for (const filter of ['az1', 'az 3', 'az1,  az 3', 'az2, az 3, az1']) {
      const q = encodeURIComponent(`{'availability_zones': '${filter}'}`);
      const res = await http().get(`/v2/types?extra_specs=${q}`).set(f.as(f.admin)).expect(200);
      const ids = res.body.share_types.map((t: { id: string }) => t.id);
      assert.ok(ids.includes(some.id), filter);
      assert.ok(ids.includes(any.id), filter);
      assert.ok(!ids.includes(other.id), filter);
    }
    const q = encodeURIComponent("{'availability_zones': 'az1, az9'}");
    const res = await http().get(`/v2/types?extra_specs=${q}`).set(f.as(f.admin)).expect(200);
    const ids = res.body.share_types.map((t: { id: string }) => t.id);
    assert.ok(!ids.includes(some.id) && ids.includes(any.id));
  });

  test('from 2.48 a zone outside the type is a 400 and the scheduler keeps to the type; below, the spec is ignored', async () => {
    const t = await makeType('az-only-2', { availability_zones: 'az2' });
    const refused = await createShare(t.id, '2.48', 'az1');
    assert.match(faultMessage(refused.body, 'badRequest', 400), /availability zone chosen az1/);

    for (let i = 0; i < 3; i++) {
      const res = await createShare(t.id, '2.48');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await f.drain();
      const share = await f.getShare(res.body.share.id);
      assert.equal(share.status, 'available');
      assert.equal(share.availability_zone, 'az2');
    }

    // Below 2.48 Manila's API does not pass the type's zones on: a zone of the type's choosing is
    // not required, and a spec naming no zone there is still placed.
    await http()
      .put(`/v2/types/${t.id}/extra_specs/availability_zones`)
      .set(f.as(f.admin))
      .send({ availability_zones: 'az_that_doesnt_exist' })
      .expect(200);
    const old = await createShare(t.id, '2.47');
    assert.equal(old.status, 200, JSON.stringify(old.body));
    await f.drain();
    const placed = await f.getShare(old.body.share.id);
    assert.equal(placed.status, 'available');
    assert.ok(['az1', 'az2'].includes(placed.availability_zone));
    const asked = await createShare(t.id, '2.47', 'az1');
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    await f.drain();
    assert.equal((await f.getShare(asked.body.share.id)).availability_zone, 'az1');

    // From 2.48 the same spec leaves no backend: the share ends in error, as Manila's scheduler.
    const none = await createShare(t.id, '2.48');
    assert.equal(none.status, 200);
    await f.drain();
    assert.equal((await f.getShare(none.body.share.id)).status, 'error');
  });
});
