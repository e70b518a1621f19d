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

async function messagesFor(id: string): Promise<string[]> {
  const res = await f.t.http().get(`/v2/messages?resource_id=${id}`).set(f.as(f.alice.token)).expect(200);
  return res.body.messages.map((m: { user_message: string }) => m.user_message);
}

const snapshot = (shareId: string) => f.newSnapshot(shareId);

async function setQuota(projectId: string, quota: Record<string, number>) {
  await f.t
    .http()
    .put(`/v2/quota-sets/${projectId}`)
    .set(f.as(f.admin))
    .send({ quota_set: quota })
    .expect(200);
}

describe('extend', () => {
  test('extending → available at the new size; the quota follows', async () => {
    const id = await f.newShare({ size: 1 });
    const before = await f.usage(f.alice.projectId, 'gigabytes');
    const res = await f.action(id, { extend: { new_size: 3 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal((await f.getShare(id)).status, 'extending');
    assert.equal((await f.usage(f.alice.projectId, 'gigabytes')).reserved, before.reserved + 2);
    await f.drain();
    const share = await f.getShare(id);
    assert.equal(share.status, 'available');
    assert.equal(share.size, 3);
    assert.equal(f.t.memory.share(id)?.size, 3);
    const now = await f.usage(f.alice.projectId, 'gigabytes');
    assert.deepEqual([now.in_use, now.reserved], [before.in_use + 2, before.reserved]);
  });

  test('the old os-extend name and a string size work too', async () => {
    const id = await f.newShare();
    assert.equal((await f.action(id, { 'os-extend': { new_size: '2' } })).status, 202);
    await f.drain();
    assert.equal((await f.getShare(id)).size, 2);
  });

  test('same or smaller size, bad sizes and a busy share are 400; nothing changes', async () => {
    const id = await f.newShare({ size: 2 });
    for (const [arg, pattern] of [
      [{ new_size: 2 }, /greater than the current size 2/],
      [{ new_size: 1 }, /greater than the current size/],
      [{ new_size: 0 }, /at least 1/],
      [{ new_size: -1 }, /at least 1/],
      [{ new_size: 'big' }, /whole number/],
      [{ new_size: 1.5 }, /whole number/],
      [{}, /new_size/],
      [null, /new_size/],
    ] as const) {
      const res = await f.action(id, { extend: arg });
      assert.match(faultMessage(res.body, 'badRequest', 400), pattern, JSON.stringify(arg));
    }
    assert.equal((await f.action(id, { extend: { new_size: 3 } })).status, 202);
    const busy = await f.action(id, { extend: { new_size: 4 } });
    assert.match(faultMessage(busy.body, 'badRequest', 400), /'extending'.*must be 'available'/);
    await f.drain();
    assert.equal((await f.getShare(id)).size, 3);
  });

  test('over quota is 403 and the share stays available at its size', async () => {
    const t = f.t;
    const carol = await t.makeUser({ name: 'carol', project: 'tight', role: 'member' });
    await setQuota(carol.projectId, { gigabytes: 3 });
    const id = await f.newShare({ size: 2 }, carol.token);
    const res = await f.action(id, { extend: { new_size: 4 } }, carol.token);
    assert.match(faultMessage(res.body, 'forbidden', 403), /gigabytes/);
    const share = await f.getShare(id, carol.token);
    assert.deepEqual([share.status, share.size], ['available', 2]);
    assert.equal((await f.usage(carol.projectId, 'gigabytes')).reserved, 0);
    assert.equal((await f.action(id, { extend: { new_size: 3 } }, carol.token)).status, 202);
  });

  test('the per-share gigabyte limit is 400', async () => {
    const dave = await f.t.makeUser({ name: 'dave', project: 'small-shares', role: 'member' });
    await setQuota(dave.projectId, { per_share_gigabytes: 2 });
    const id = await f.newShare({ size: 1 }, dave.token);
    const res = await f.action(id, { extend: { new_size: 3 } }, dave.token);
    assert.match(faultMessage(res.body, 'badRequest', 400), /per-share limit of 2/);
  });

  test('a backend failure leaves extending_error, a message, and the reservation returned', async () => {
    const id = await f.newShare({ size: 1 });
    const before = await f.usage(f.alice.projectId, 'gigabytes');
    f.t.memory.inject({ op: 'extendShare', id, error: new BackendError('Failed', 'disk on fire'), times: 1 });
    assert.equal((await f.action(id, { extend: { new_size: 5 } })).status, 202);
    await f.drain();
    const share = await f.getShare(id);
    assert.deepEqual([share.status, share.size], ['extending_error', 1]);
    assert.match((await messagesFor(id)).join('\n'), /disk on fire/);
    assert.deepEqual(await f.usage(f.alice.projectId, 'gigabytes'), before);
    // An operator puts it back; the share can be used and deleted again.
    await f.t
      .http()
      .post(`/v2/shares/${id}/action`)
      .set(f.as(f.admin))
      .send({ reset_status: { status: 'available' } })
      .expect(202);
    assert.equal((await f.action(id, { extend: { new_size: 2 } })).status, 202);
    await f.drain();
    assert.equal((await f.getShare(id)).size, 2);
  });

  test('force needs admin', async () => {
    const id = await f.newShare();
    const res = await f.action(id, { extend: { new_size: 2, force: true } });
    assert.match(faultMessage(res.body, 'forbidden', 403), /force_extend/);
    assert.equal((await f.action(id, { extend: { new_size: 2, force: true } }, f.admin)).status, 202);
  });
});

describe('shrink', () => {
  test('shrinking → available at the new size; quota usage is freed', async () => {
    const id = await f.newShare({ size: 4 });
    const before = await f.usage(f.alice.projectId, 'gigabytes');
    assert.equal((await f.action(id, { shrink: { new_size: 2 } })).status, 202);
    assert.equal((await f.getShare(id)).status, 'shrinking');
    await f.drain();
    const share = await f.getShare(id);
    assert.deepEqual([share.status, share.size], ['available', 2]);
    assert.equal((await f.usage(f.alice.projectId, 'gigabytes')).in_use, before.in_use - 2);
  });

  test('same or bigger size, zero, and a busy share are 400', async () => {
    const id = await f.newShare({ size: 2 });
    for (const [size, pattern] of [
      [2, /less than the current size 2/],
      [3, /less than the current size/],
      [0, /at least 1/],
    ] as const) {
      const res = await f.action(id, { shrink: { new_size: size } });
      assert.match(faultMessage(res.body, 'badRequest', 400), pattern);
    }
    await f.action(id, { extend: { new_size: 3 } });
    const busy = await f.action(id, { shrink: { new_size: 1 } });
    assert.match(faultMessage(busy.body, 'badRequest', 400), /'extending'/);
    await f.drain();
  });

  test('below the space in use: refused by the backend, share available at its size, data intact, a message', async () => {
    const id = await f.newShare({ size: 3 });
    f.t.memory.writeFile(id, 'keep.bin', 'precious');
    f.t.memory.setUsage(id, { usedBytes: 2.5 * 1024 ** 3 });
    const before = await f.usage(f.alice.projectId, 'gigabytes');
    assert.equal((await f.action(id, { shrink: { new_size: 2 } })).status, 202);
    await f.drain();
    const share = await f.getShare(id);
    assert.deepEqual([share.status, share.size], ['available', 3]);
    assert.equal(f.t.memory.share(id)?.size, 3);
    assert.equal(String(f.t.memory.readFile(id, 'keep.bin')), 'precious');
    assert.match((await messagesFor(id)).join('\n'), /not shrunk to 2 GiB.*unchanged/s);
    assert.deepEqual(await f.usage(f.alice.projectId, 'gigabytes'), before);
  });

  test('any other backend failure is shrinking_error', async () => {
    const id = await f.newShare({ size: 3 });
    f.t.memory.inject({
      op: 'shrinkShare',
      id,
      error: new BackendError('Unavailable', 'storage away'),
      times: 1,
    });
    await f.action(id, { shrink: { new_size: 1 } });
    await f.drain();
    const share = await f.getShare(id);
    assert.deepEqual([share.status, share.size], ['shrinking_error', 3]);
    assert.match((await messagesFor(id)).join('\n'), /storage away/);
  });
});

describe('revert', () => {
  test('to the latest snapshot: reverting → available, data as at snapshot time, snapshot kept', async () => {
    const id = await f.newShare({ size: 1 });
    f.t.memory.writeFile(id, 'a.txt', 'version 1');
    const snap = await snapshot(id);
    f.t.memory.writeFile(id, 'a.txt', 'version 2');
    f.t.memory.writeFile(id, 'b.txt', 'new file');
    assert.equal((await f.action(id, { revert: { snapshot_id: snap } })).status, 202);
    assert.equal((await f.getShare(id)).status, 'reverting');
    const during = await f.t.http().get(`/v2/snapshots/${snap}`).set(f.as(f.alice.token)).expect(200);
    assert.equal(during.body.snapshot.status, 'restoring');
    await f.drain();
    assert.equal((await f.getShare(id)).status, 'available');
    assert.deepEqual(f.t.memory.listFiles(id), ['a.txt']);
    assert.equal(String(f.t.memory.readFile(id, 'a.txt')), 'version 1');
    const snapAfter = await f.t.http().get(`/v2/snapshots/${snap}`).set(f.as(f.alice.token)).expect(200);
    assert.equal(snapAfter.body.snapshot.status, 'available');
  });

  test("the share takes the snapshot's size: a smaller one frees quota, a bigger one reserves it", async () => {
    const id = await f.newShare({ size: 2 });
    const snap2 = await snapshot(id);
    await f.action(id, { extend: { new_size: 4 } });
    await f.drain();
    const before = await f.usage(f.alice.projectId, 'gigabytes');
    await f.action(id, { revert: { snapshot_id: snap2 } });
    await f.drain();
    assert.equal((await f.getShare(id)).size, 2);
    assert.equal((await f.usage(f.alice.projectId, 'gigabytes')).in_use, before.in_use - 2);

    await f.action(id, { shrink: { new_size: 1 } });
    await f.drain();
    await f.action(id, { revert: { snapshot_id: snap2 } });
    await f.drain();
    assert.equal((await f.getShare(id)).size, 2);
    const after = await f.usage(f.alice.projectId, 'gigabytes');
    assert.deepEqual([after.in_use, after.reserved], [before.in_use - 2, before.reserved]);
  });

  test('growing back to the snapshot size over quota is 403 and changes nothing', async () => {
    const erin = await f.t.makeUser({ name: 'erin', project: 'tight-revert', role: 'member' });
    const id = await f.newShare({ size: 3 }, erin.token);
    const snap = await f.t
      .http()
      .post('/v2/snapshots')
      .set(f.as(erin.token))
      .send({ snapshot: { share_id: id } })
      .expect(202);
    await f.drain();
    await f.action(id, { shrink: { new_size: 1 } }, erin.token);
    await f.drain();
    await setQuota(erin.projectId, { gigabytes: 2 });
    const res = await f.action(id, { revert: { snapshot_id: snap.body.snapshot.id } }, erin.token);
    assert.match(faultMessage(res.body, 'forbidden', 403), /gigabytes/);
    const share = await f.getShare(id, erin.token);
    assert.deepEqual([share.status, share.size], ['available', 1]);
  });

  test('not the latest snapshot is 409; another share’s snapshot is 400; an unknown one 404', async () => {
    const id = await f.newShare();
    const older = await snapshot(id);
    const latest = await snapshot(id);
    const res = await f.action(id, { revert: { snapshot_id: older } });
    assert.match(
      faultMessage(res.body, 'conflictingRequest', 409),
      new RegExp(`latest snapshot \\(${latest}\\)`),
    );
    const other = await f.newShare();
    const foreign = await f.action(other, { revert: { snapshot_id: latest } });
    assert.match(faultMessage(foreign.body, 'badRequest', 400), /not a snapshot of share/);
    // Manila's revert answers ShareSnapshotNotFound with 400 (the plugin's
    // test_revert_to_missing_snapshot sends the share's own id as the snapshot).
    const unknown = await f.action(id, { revert: { snapshot_id: '3f1a0c2e-0000-4000-8000-000000000000' } });
    assert.match(faultMessage(unknown.body, 'badRequest', 400), /could not be found/);
    const ownId = await f.action(id, { revert: { snapshot_id: id } });
    faultMessage(ownId.body, 'badRequest', 400);
    const missing = await f.action(id, { revert: {} });
    assert.match(faultMessage(missing.body, 'badRequest', 400), /snapshot_id/);
    assert.equal((await f.getShare(id)).status, 'available');
  });

  test('a snapshot still being taken, or a busy share, is 409', async () => {
    const id = await f.newShare();
    const res = await f.t
      .http()
      .post('/v2/snapshots')
      .set(f.as(f.alice.token))
      .send({ snapshot: { share_id: id } })
      .expect(202);
    const creating = await f.action(id, { revert: { snapshot_id: res.body.snapshot.id } });
    assert.match(faultMessage(creating.body, 'conflictingRequest', 409), /'creating'/);
    await f.drain();
    await f.action(id, { extend: { new_size: 2 } });
    const busy = await f.action(id, { revert: { snapshot_id: res.body.snapshot.id } });
    assert.match(faultMessage(busy.body, 'conflictingRequest', 409), /'extending'/);
    await f.drain();
  });

  test('a type without revert_to_snapshot_support is 400', async () => {
    const type = await f.t
      .http()
      .post('/v2/types')
      .set(f.as(f.admin))
      .send({
        share_type: {
          name: 'no-revert',
          extra_specs: { driver_handles_share_servers: false, snapshot_support: true },
        },
      })
      .expect(200);
    const id = await f.newShare({ share_type: type.body.share_type.id });
    const snap = await snapshot(id);
    const res = await f.action(id, { revert: { snapshot_id: snap } });
    assert.match(faultMessage(res.body, 'badRequest', 400), /revert_to_snapshot_support/);
  });

  test('a backend failure: reverting_error, the snapshot available again, a message', async () => {
    const id = await f.newShare();
    const snap = await snapshot(id);
    f.t.memory.inject({
      op: 'revertToSnapshot',
      id,
      error: new BackendError('Failed', 'copy broke'),
      times: 1,
    });
    await f.action(id, { revert: { snapshot_id: snap } });
    await f.drain();
    assert.equal((await f.getShare(id)).status, 'reverting_error');
    const s = await f.t.http().get(`/v2/snapshots/${snap}`).set(f.as(f.alice.token)).expect(200);
    assert.equal(s.body.snapshot.status, 'available');
    assert.match((await messagesFor(id)).join('\n'), /copy broke/);
  });
});

describe('who may act', () => {
  test('a reader gets 403, another project 404, for every action', async () => {
    const id = await f.newShare({ size: 2 });
    const snap = await snapshot(id);
    for (const body of [
      { extend: { new_size: 3 } },
      { shrink: { new_size: 1 } },
      { revert: { snapshot_id: snap } },
    ]) {
      faultMessage((await f.action(id, body, f.reader.token)).body, 'forbidden', 403);
      faultMessage((await f.action(id, body, f.bob.token)).body, 'itemNotFound', 404);
    }
    const share = await f.getShare(id);
    assert.deepEqual([share.status, share.size], ['available', 2]);
  });
});
