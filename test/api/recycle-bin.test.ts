import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { faultMessage } from '../helpers/app.ts';
import { tempDir } from '../helpers/db.ts';
import { requestPasswordToken, startServerProcess, waitFor } from '../helpers/process.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

/**
 * The share recycle bin (Manila's soft delete, microversion 2.69): the soft_delete and restore
 * actions, the bin's list (is_soft_deleted=true), what a share in the bin refuses, its quota, and
 * the purge once its retention has passed. The plugin's test_shares_actions
 * (test_soft_delete_and_restore_share) and test_shares_actions_negative (soft delete negatives)
 * check the same against Manila.
 */
let f: ShareFixture;
before(async () => {
  f = await shareFixture();
});
after(() => f.t.close());

const V = '2.69';
const http = () => f.t.http();
const act = (id: string, body: Record<string, unknown>, token = f.alice.token, version = V) =>
  http().post(`/v2/shares/${id}/action`).set(f.as(token, version)).send(body);
const softDelete = (id: string, token?: string, version?: string) =>
  act(id, { soft_delete: null }, token, version);
const restore = (id: string, token?: string, version?: string) => act(id, { restore: null }, token, version);

async function listed(query = '', token = f.alice.token): Promise<string[]> {
  const res = await http().get(`/v2/shares${query}`).set(f.as(token, V)).expect(200);
  return res.body.shares.map((s: { id: string }) => s.id);
}

describe('the share recycle bin (2.69)', () => {
  test('soft delete moves a share to the bin: out of the lists, in the bin list, marked in its view', async () => {
    const id = await f.newShare();
    assert.ok((await listed()).includes(id));
    const res = await softDelete(id);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.text, '');

    assert.ok(!(await listed()).includes(id));
    assert.ok(!(await listed('/detail')).includes(id));
    assert.ok((await listed('?is_soft_deleted=true')).includes(id));
    assert.ok((await listed('/detail?is_soft_deleted=True')).includes(id));
    // The bin lists only the bin.
    const other = await f.newShare();
    assert.ok(!(await listed('?is_soft_deleted=true')).includes(other));
    // Before 2.69 Manila drops the filter: the usual list, without the bin.
    const old68 = await http()
      .get('/v2/shares?is_soft_deleted=true')
      .set(f.as(f.alice.token, '2.68'))
      .expect(200);
    const ids68 = old68.body.shares.map((s: { id: string }) => s.id);
    assert.ok(ids68.includes(other) && !ids68.includes(id));

    const share = (await http().get(`/v2/shares/${id}`).set(f.as(f.alice.token, V)).expect(200)).body.share;
    assert.equal(share.is_soft_deleted, true);
    assert.equal(share.status, 'available');
    const due = Date.parse(share.scheduled_to_be_deleted_at);
    const week = 7 * 24 * 3600 * 1000;
    assert.ok(Math.abs(due - (Date.now() + week)) < 120_000, share.scheduled_to_be_deleted_at);
    // Before 2.69 the view has neither key.
    const old = (await http().get(`/v2/shares/${id}`).set(f.as(f.alice.token, '2.68')).expect(200)).body
      .share;
    assert.equal('is_soft_deleted' in old, false);
    assert.equal('scheduled_to_be_deleted_at' in old, false);

    const back = await restore(id);
    assert.equal(back.status, 202);
    assert.equal(back.text, '');
    const restored = (await http().get(`/v2/shares/${id}`).set(f.as(f.alice.token, V)).expect(200)).body
      .share;
    assert.equal(restored.is_soft_deleted, false);
    assert.equal(restored.scheduled_to_be_deleted_at, null);
    assert.ok((await listed()).includes(id));
    assert.ok(!(await listed('?is_soft_deleted=true')).includes(id));
  });

  test('restoring a share that is not in the bin is a 200 with no body, as Manila', async () => {
    const id = await f.newShare();
    const res = await restore(id);
    assert.equal(res.status, 200);
    assert.equal(res.text, '');
  });

  test('the actions exist from 2.69 only; unknown or other-project shares are 404', async () => {
    const id = await f.newShare();
    faultMessage((await softDelete(id, f.alice.token, '2.68')).body, 'itemNotFound', 404);
    faultMessage((await restore(id, f.alice.token, '2.68')).body, 'itemNotFound', 404);
    faultMessage((await softDelete('wrong_share_id')).body, 'itemNotFound', 404);
    faultMessage((await restore('wrong_share_id')).body, 'itemNotFound', 404);
    faultMessage((await softDelete(id, f.bob.token)).body, 'itemNotFound', 404);
    faultMessage((await restore(id, f.bob.token)).body, 'itemNotFound', 404);
    // A reader may not put a share in the bin.
    faultMessage((await softDelete(id, f.reader.token)).body, 'forbidden', 403);
    assert.equal((await f.getShare(id)).status, 'available');
  });

  test('refusals (403): already in the bin, a status other than available/error, snapshots', async () => {
    const id = await f.newShare();
    assert.equal((await softDelete(id)).status, 202);
    assert.match(faultMessage((await softDelete(id)).body, 'forbidden', 403), /soft deleted already/);
    assert.equal((await restore(id)).status, 202);

    const busy = await f.newShare();
    assert.equal((await act(busy, { reset_status: { status: 'error_deleting' } }, f.admin)).status, 202);
    assert.match(faultMessage((await softDelete(busy)).body, 'forbidden', 403), /error_deleting/);
    assert.equal((await act(busy, { reset_status: { status: 'error' } }, f.admin)).status, 202);
    assert.equal((await softDelete(busy)).status, 202, 'a share in error may go to the bin');

    const withSnap = await f.newShare();
    await f.newSnapshot(withSnap);
    assert.match(faultMessage((await softDelete(withSnap)).body, 'forbidden', 403), /snapshot/);
  });

  test('a share in the bin refuses changes with 403 until restored; it can still be deleted', async () => {
    const id = await f.newShare();
    assert.equal((await softDelete(id)).status, 202);
    const refusals: [string, Promise<{ status: number; body: Record<string, unknown> }>][] = [
      ['extend', act(id, { extend: { new_size: 2 } })],
      ['shrink', act(id, { shrink: { new_size: 1 } })],
      ['allow_access', act(id, { allow_access: { access_type: 'ip', access_to: '10.0.0.1' } })],
      ['reset_status', act(id, { reset_status: { status: 'error' } }, f.admin)],
      [
        'update',
        http()
          .put(`/v2/shares/${id}`)
          .set(f.as(f.alice.token, V))
          .send({ share: { name: 'x' } }),
      ],
      [
        'snapshot',
        http()
          .post('/v2/snapshots')
          .set(f.as(f.alice.token, V))
          .send({ snapshot: { share_id: id } }),
      ],
    ];
    for (const [what, pending] of refusals) {
      const res = await pending;
      assert.equal(res.status, 403, `${what}: ${JSON.stringify(res.body)}`);
      assert.match(faultMessage(res.body, 'forbidden', 403), /soft deleted/, what);
    }
    assert.equal((await f.getShare(id)).size, 1);

    // DELETE takes it out of the bin for good, as Manila's delete does.
    await http().delete(`/v2/shares/${id}`).set(f.as(f.alice.token, V)).expect(202);
    await f.drain();
    await http().get(`/v2/shares/${id}`).set(f.as(f.alice.token, V)).expect(404);
  });

  test('quota stays held while a share is in the bin and is given back once it is purged', async () => {
    const later = new Date(Date.now() + (7 * 24 * 3600 + 60) * 1000);
    // Empty the bin of the tests above first, so the purge below has this share only.
    await f.t.stack.shares.purgeExpired(later);
    await f.drain();
    const before = await f.usage(f.alice.projectId, 'gigabytes');
    const id = await f.newShare({ size: 3 });
    assert.equal((await f.usage(f.alice.projectId, 'gigabytes')).in_use, before.in_use + 3);
    assert.equal((await softDelete(id)).status, 202);
    assert.equal((await f.usage(f.alice.projectId, 'gigabytes')).in_use, before.in_use + 3);

    // Not due yet: the purge leaves it.
    assert.equal(await f.t.stack.shares.purgeExpired(), 0);
    assert.equal((await f.getShare(id)).is_soft_deleted, true);

    // A week and a minute later it is due: the purge deletes it as DELETE would.
    assert.equal(await f.t.stack.shares.purgeExpired(later), 1);
    assert.equal((await f.getShare(id)).status, 'deleting');
    await f.drain();
    await http().get(`/v2/shares/${id}`).set(f.as(f.alice.token, V)).expect(404);
    assert.ok(!(await listed('?is_soft_deleted=true')).includes(id));
    assert.equal((await f.usage(f.alice.projectId, 'gigabytes')).in_use, before.in_use);
    assert.equal(await f.t.stack.shares.purgeExpired(later), 0, 'nothing left to purge');
  });

  test('restore is refused once the purge has started deleting the share', async () => {
    const id = await f.newShare();
    assert.equal((await softDelete(id)).status, 202);
    const later = new Date(Date.now() + (7 * 24 * 3600 + 60) * 1000);
    assert.ok((await f.t.stack.shares.purgeExpired(later)) >= 1);
    assert.match(faultMessage((await restore(id)).body, 'forbidden', 403), /being deleted/);
    await f.drain();
  });

  test('the bin list counts and pages like the share list, and an admin sees every project’s bin', async () => {
    const a = await f.newShare();
    const b = await f.newShare({}, f.bob.token);
    assert.equal((await softDelete(a)).status, 202);
    assert.equal((await softDelete(b, f.bob.token)).status, 202);
    const mine = await http()
      .get('/v2/shares/detail?is_soft_deleted=true&with_count=true')
      .set(f.as(f.alice.token, V))
      .expect(200);
    assert.ok(mine.body.shares.every((s: { is_soft_deleted: boolean }) => s.is_soft_deleted));
    assert.equal(mine.body.count, mine.body.shares.length);
    const ids = mine.body.shares.map((s: { id: string }) => s.id);
    assert.ok(ids.includes(a) && !ids.includes(b));
    const all = await listed('?is_soft_deleted=true&all_tenants=1', f.admin);
    assert.ok(all.includes(a) && all.includes(b));
  });
});

describe('the purge in a running server', () => {
  test('a share whose retention has passed is deleted without anyone asking', async () => {
    const data = tempDir('abaca-recycle-bin');
    const password = 'recycle-bin-admin-password';
    const server = await startServerProcess({
      ABACA_DATA_DIR: data.path,
      ABACA_ADMIN_PASSWORD: password,
      ABACA_LOG_LEVEL: 'warn',
      ABACA_BACKENDS: JSON.stringify([
        { name: 'local', driver: 'local', options: { rootDir: `${data.path}/shares`, capacityGiB: 100 } },
      ]),
      ABACA_SOFT_DELETED_SHARE_RETENTION: '1',
      ABACA_RECYCLE_BIN_PURGE_INTERVAL: '0.2',
    });
    try {
      const token = (await requestPasswordToken(server.url, password)).headers.get(
        'x-subject-token',
      ) as string;
      const headers = {
        'content-type': 'application/json',
        'X-Auth-Token': token,
        'X-OpenStack-Manila-API-Version': V,
      };
      const created = await fetch(`${server.url}/v2/shares`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ share: { size: 1, share_proto: 'NFS' } }),
      });
      assert.equal(created.status, 200);
      const id = ((await created.json()) as { share: { id: string } }).share.id;
      const show = () => fetch(`${server.url}/v2/shares/${id}`, { headers });
      await waitFor('the share to be available', 20_000, async () => {
        const res = await show();
        return ((await res.json()) as { share: { status: string } }).share.status === 'available'
          ? true
          : undefined;
      });
      const soft = await fetch(`${server.url}/v2/shares/${id}/action`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ soft_delete: null }),
      });
      assert.equal(soft.status, 202);
      assert.equal(
        ((await (await show()).json()) as { share: { is_soft_deleted: boolean } }).share.is_soft_deleted,
        true,
      );
      await waitFor('the purge to delete the share', 20_000, async () =>
        (await show()).status === 404 ? true : undefined,
      );
    } finally {
      await server.stop();
      data.remove();
    }
  });
});
