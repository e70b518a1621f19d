import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestUser } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

let f: ShareFixture;
let carol: TestUser;
before(async () => {
  f = await shareFixture();
  carol = await f.t.makeUser({ name: 'carol', project: 'demo', role: 'member' });
});
after(() => f.t.close());

const http = () => f.t.http();
const project = () => f.alice.projectId;
const quotaUrl = (q = '') => `/v2/quota-sets/${project()}${q}`;

async function setQuota(query: string, values: Record<string, unknown>, status = 200) {
  const res = await http().put(quotaUrl(query)).set(f.as(f.admin)).send({ quota_set: values });
  assert.equal(res.status, status, JSON.stringify(res.body));
  return res.body;
}

async function createShare(token: string, size = 1) {
  return http()
    .post('/v2/shares')
    .set(f.as(token))
    .send({ share: { size, share_proto: 'NFS' } });
}

describe('user quotas (quota-sets ?user_id=)', () => {
  test('a user’s quota set shows the project’s limits until set; setting it leaves the project’s alone', async () => {
    const shown = await http()
      .get(quotaUrl(`?user_id=${f.alice.userId}`))
      .set(f.as(f.alice.token))
      .expect(200);
    assert.equal(shown.body.quota_set.shares, 50);
    const set = await setQuota(`?user_id=${f.alice.userId}`, { shares: 2, gigabytes: 7 });
    assert.deepEqual([set.quota_set.shares, set.quota_set.gigabytes], [2, 7]);
    const user = await http()
      .get(quotaUrl(`?user_id=${f.alice.userId}`))
      .set(f.as(f.admin))
      .expect(200);
    assert.deepEqual(
      [user.body.quota_set.shares, user.body.quota_set.gigabytes, user.body.quota_set.snapshots],
      [2, 7, 50],
    );
    const proj = await http().get(quotaUrl()).set(f.as(f.admin)).expect(200);
    assert.deepEqual([proj.body.quota_set.shares, proj.body.quota_set.gigabytes], [50, 1000]);
    const other = await http()
      .get(quotaUrl(`?user_id=${carol.userId}`))
      .set(f.as(f.admin))
      .expect(200);
    assert.equal(other.body.quota_set.shares, 50);
  });

  test('the user’s limit is enforced on their own shares only, and detail shows their usage', async () => {
    await setQuota(`?user_id=${f.alice.userId}`, { shares: 2, gigabytes: 7 });
    assert.equal((await createShare(f.alice.token, 4)).status, 200);
    await f.drain();
    const over = await createShare(f.alice.token, 4);
    assert.equal(over.status, 413, JSON.stringify(over.body));
    assert.match(over.body.overLimit.message, /user limit 7/);
    assert.equal((await createShare(f.alice.token, 3)).status, 200);
    await f.drain();
    const third = await createShare(f.alice.token, 1);
    assert.equal(third.status, 413);
    assert.match(third.body.overLimit.message, /shares \(user limit 2/);
    // Carol, in the same project, has no limit of her own: the project's applies to her.
    assert.equal((await createShare(carol.token, 4)).status, 200);
    await f.drain();
    const detail = await http()
      .get(quotaUrl(`/detail?user_id=${f.alice.userId}`))
      .set(f.as(f.admin))
      .expect(200);
    assert.deepEqual(detail.body.quota_set.shares, { limit: 2, in_use: 2, reserved: 0 });
    assert.deepEqual(detail.body.quota_set.gigabytes, { limit: 7, in_use: 7, reserved: 0 });
    const projectDetail = await http().get(quotaUrl('/detail')).set(f.as(f.admin)).expect(200);
    assert.equal(projectDetail.body.quota_set.gigabytes.in_use, 11);
  });

  test('deleting a share gives its owner’s usage back; reset removes the user’s limits', async () => {
    const list = await http().get('/v2/shares').set(f.as(f.alice.token)).expect(200);
    for (const s of list.body.shares)
      await http().delete(`/v2/shares/${s.id}`).set(f.as(f.alice.token)).expect(202);
    await f.drain();
    const detail = await http()
      .get(quotaUrl(`/detail?user_id=${f.alice.userId}`))
      .set(f.as(f.admin))
      .expect(200);
    assert.deepEqual(detail.body.quota_set.gigabytes, { limit: 7, in_use: 0, reserved: 0 });
    const reset = await http()
      .delete(quotaUrl(`?user_id=${f.alice.userId}`))
      .set(f.as(f.admin));
    assert.equal(reset.status, 202);
    const shown = await http()
      .get(quotaUrl(`?user_id=${f.alice.userId}`))
      .set(f.as(f.admin))
      .expect(200);
    assert.deepEqual([shown.body.quota_set.shares, shown.body.quota_set.gigabytes], [50, 1000]);
  });

  test('above the project’s limit is 400 unless forced; share_type with user_id is 400; members may not change them', async () => {
    await setQuota('', { shares: 10 });
    for (const shares of [11, -1]) {
      const res = await setQuota(`?user_id=${f.alice.userId}`, { shares }, 400);
      assert.match(res.badRequest.message, /project's is 10/);
      await setQuota(`?user_id=${f.alice.userId}`, { shares, force: true });
    }
    for (const [method, body] of [
      ['get', undefined],
      ['delete', undefined],
      ['put', { quota_set: { shares: 1 } }],
    ] as const) {
      const res = await http()
        [method](quotaUrl(`?share_type=default&user_id=${f.alice.userId}`))
        .set(f.as(f.admin))
        .send(body);
      assert.equal(res.status, 400, `${method}: ${JSON.stringify(res.body)}`);
    }
    for (const method of ['put', 'delete'] as const) {
      const res = await http()
        [method](quotaUrl(`?user_id=${f.alice.userId}`))
        .set(f.as(f.alice.token))
        .send(method === 'put' ? { quota_set: { shares: 1 } } : undefined);
      assert.equal(res.status, 403);
    }
    await http()
      .delete(quotaUrl(`?user_id=${f.alice.userId}`))
      .set(f.as(f.admin))
      .expect(202);
    await http().delete(quotaUrl()).set(f.as(f.admin)).expect(202);
  });

  test('concurrent creates by one user stop exactly at the user’s limit', async () => {
    await setQuota(`?user_id=${carol.userId}`, { shares: 4 });
    const before = (
      await http()
        .get(quotaUrl(`/detail?user_id=${carol.userId}`))
        .set(f.as(f.admin))
        .expect(200)
    ).body.quota_set.shares.in_use;
    const results = await Promise.all(Array.from({ length: 12 }, () => createShare(carol.token)));
    const ok = results.filter((r) => r.status === 200).length;
    assert.equal(ok, 4 - before);
    assert.ok(results.every((r) => r.status === 200 || r.status === 413));
  });

  test('keys of later microversions are left out, for a project and for a user (2.40, 2.53, 2.62)', async () => {
    for (const q of ['', `?user_id=${f.alice.userId}`])
      for (const [v, absent, present] of [
        [
          '2.39',
          ['share_groups', 'share_group_snapshots', 'share_replicas', 'per_share_gigabytes'],
          ['shares'],
        ],
        ['2.52', ['share_replicas', 'replica_gigabytes', 'per_share_gigabytes'], ['share_groups']],
        ['2.61', ['per_share_gigabytes'], ['share_replicas', 'replica_gigabytes']],
        ['2.62', [], ['per_share_gigabytes']],
      ] as const) {
        const shown = (await http().get(quotaUrl(q)).set(f.as(f.admin, v)).expect(200)).body.quota_set;
        const detail = (
          await http()
            .get(quotaUrl(`/detail${q}`))
            .set(f.as(f.admin, v))
            .expect(200)
        ).body.quota_set;
        for (const body of [shown, detail]) {
          for (const key of absent) assert.equal(key in body, false, `${key} at ${v} ${q}`);
          for (const key of present) assert.equal(key in body, true, `${key} at ${v} ${q}`);
        }
      }
  });

  test('share_type before 2.39 and keys set before their microversion are 400', async () => {
    for (const req of [
      () => http().get(quotaUrl('?share_type=default')),
      () => http().get(quotaUrl('/detail?share_type=default')),
      () => http().delete(quotaUrl('?share_type=default')),
      () =>
        http()
          .put(quotaUrl('?share_type=default'))
          .send({ quota_set: { shares: 5 } }),
    ]) {
      const res = await req().set(f.as(f.admin, '2.38'));
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.badRequest.message, /2\.39/);
      assert.equal((await req().set(f.as(f.admin, '2.39'))).status < 300, true);
    }
    for (const [v, key] of [
      ['2.39', 'share_groups'],
      ['2.52', 'replica_gigabytes'],
      ['2.61', 'per_share_gigabytes'],
    ] as const) {
      const res = await http()
        .put(quotaUrl())
        .set(f.as(f.admin, v))
        .send({ quota_set: { [key]: 5 } });
      assert.equal(res.status, 400, `${key} at ${v}`);
    }
    await http().delete(quotaUrl('?share_type=default')).set(f.as(f.admin)).expect(202);
    await http().delete(quotaUrl()).set(f.as(f.admin)).expect(202);
  });
});

describe('share-type quotas against the project’s', () => {
  test('a share type’s limit above the project’s is 400 unless forced; at or below it is fine', async () => {
    await setQuota('', { shares: 10 });
    for (const shares of [11, -1]) {
      const res = await setQuota('?share_type=default', { shares }, 400);
      assert.match(res.badRequest.message, /share type .*project's is 10/);
      await setQuota('?share_type=default', { shares, force: true });
    }
    await setQuota('?share_type=default', { shares: 10 });
    await http().delete(quotaUrl('?share_type=default')).set(f.as(f.admin)).expect(202);
    await http().delete(quotaUrl()).set(f.as(f.admin)).expect(202);
  });
});
