import assert from 'node:assert/strict';
import { makeTestApp, type TestApp, type TestAppOptions, type TestUser } from './app.ts';

/**
 * The cast most share API tests need — an admin, a member and a reader of project "demo", a member
 * of project "other" — and the requests they repeat: make a share and let the worker finish it,
 * read it back, post an action.
 */
export interface ShareFixture {
  t: TestApp;
  admin: string;
  alice: TestUser;
  reader: TestUser;
  bob: TestUser;
  /** Headers for a token at a microversion (default 2.72, what the clients send). */
  as(token: string, version?: string): Record<string, string>;
  /** Creates a share as `token` (alice by default), runs the worker, returns its id. */
  newShare(body?: Record<string, unknown>, token?: string): Promise<string>;
  /** Takes a snapshot of a share as alice, runs the worker, returns its id. */
  newSnapshot(shareId: string): Promise<string>;
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  getShare(id: string, token?: string): Promise<any>;
  // biome-ignore lint/suspicious/noExplicitAny: a response body as supertest types it; the assertions check it.
  action(id: string, body: Record<string, unknown>, token?: string): Promise<{ status: number; body: any }>;
  /** Project-wide quota usage of a resource: { limit, in_use, reserved }. */
  usage(projectId: string, resource: string): Promise<{ limit: number; in_use: number; reserved: number }>;
  drain(): Promise<number>;
}

export async function shareFixture(options: TestAppOptions = {}): Promise<ShareFixture> {
  const t = await makeTestApp({}, options);
  const admin = await t.adminToken();
  const alice = await t.makeUser({ name: 'alice', project: 'demo', role: 'member' });
  const reader = await t.makeUser({ name: 'rita', project: 'demo', role: 'reader' });
  const bob = await t.makeUser({ name: 'bob', project: 'other', role: 'member' });
  const as = (token: string, version = '2.72') => ({
    'X-Auth-Token': token,
    'X-OpenStack-Manila-API-Version': version,
  });
  const f: ShareFixture = {
    t,
    admin,
    alice,
    reader,
    bob,
    as,
    async newShare(body = {}, token = alice.token) {
      const res = await t
        .http()
        .post('/v2/shares')
        .set(as(token))
        .send({ share: { size: 1, share_proto: 'NFS', ...body } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await t.stack.worker.drain();
      return res.body.share.id as string;
    },
    async newSnapshot(shareId) {
      const res = await t
        .http()
        .post('/v2/snapshots')
        .set(as(alice.token))
        .send({ snapshot: { share_id: shareId } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      await t.stack.worker.drain();
      return res.body.snapshot.id as string;
    },
    async getShare(id, token = alice.token) {
      const res = await t.http().get(`/v2/shares/${id}`).set(as(token)).expect(200);
      return res.body.share;
    },
    async action(id, body, token = alice.token) {
      const res = await t.http().post(`/v2/shares/${id}/action`).set(as(token)).send(body);
      return { status: res.status, body: res.body };
    },
    async usage(projectId, resource) {
      const res = await t.http().get(`/v2/quota-sets/${projectId}/detail`).set(as(admin)).expect(200);
      return res.body.quota_set[resource];
    },
    drain: () => t.stack.worker.drain(),
  };
  return f;
}
