/**
 * Data tests on the `local` backend through the whole API stack: the Koa app, the share services and
 * their worker, over a real database (PGlite, or PostgreSQL with TEST_DATABASE_URL), with a local
 * backend built from its configuration entry in a temp directory. A member of a project drives the
 * API; files are written where the share's export location points (the backend's data directory), as a
 * client of the share would write them, and whole trees are compared by checksum: content, mode and
 * size of every file, mode of every directory, target of every symlink.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readlink,
  rm,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import { staticAdminAuth } from '../../api/server.ts';
import { createBackend } from '../../backends/drivers.ts';
import type { Backend } from '../../backends/types.ts';
import { loadConfig } from '../../services/config.ts';
import { bootstrapIdentity } from '../../services/identity/bootstrap.ts';
import { createIdentity } from '../../services/identity/index.ts';
import { createShareServices, type ShareServices } from '../../services/share-services.ts';
import { ensureDefaultShareType } from '../../services/share-types.ts';
import { passwordAuth } from '../helpers/app.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const CAPACITY_GIB = 40;
const ADMIN_TOKEN = 'local-data-static-admin-token-0123456789';

let dir: string;
let tdb: TestDb;
let backend: Backend;
let stack: ShareServices;
let server: ReturnType<ReturnType<typeof createApp>['callback']>;
let token: string;
const logs: Record<string, unknown>[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'abaca-local-data-'));
  tdb = await createTestDb();
  const config = loadConfig({
    ABACA_LISTEN: '127.0.0.1:8786',
    ABACA_DATA_DIR: dir,
    ABACA_ADMIN_TOKEN: ADMIN_TOKEN,
    ABACA_LOG_LEVEL: 'info',
  });
  // Kept in memory rather than printed: the worker logs every task, and a failing test can read them.
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
        cb();
      },
    }),
  );
  const boot = await bootstrapIdentity(tdb.db, {
    password: 'local-data-admin-password',
    resetPassword: false,
  });
  await ensureDefaultShareType(tdb.db);
  // Built from a configuration entry, as the server builds it from ABACA_BACKENDS.
  backend = await createBackend({
    name: 'local',
    driver: 'local',
    options: { rootDir: join(dir, 'local'), capacityGiB: CAPACITY_GIB },
  });
  stack = createShareServices({
    db: tdb.db,
    log,
    backends: [{ backend, availabilityZone: 'nova' }],
    serverHost: 'test',
  });
  await stack.init();
  const identity = createIdentity(tdb.db, config);
  await identity.init();
  const admin = staticAdminAuth(boot.adminUserId, boot.adminProjectId);
  server = createApp({
    config,
    db: tdb.db,
    identity,
    share: stack,
    log,
    registry: new Registry(),
    staticAdmin: { token: ADMIN_TOKEN, auth: admin },
  }).callback();
  // A plain member of a project, as a tenant using the share API would be.
  const project = await identity.projects.create(admin, { name: 'data' });
  const user = await identity.users.create(admin, {
    name: 'dana',
    password: 'dana-password',
    default_project_id: project.id,
  });
  const member = (await identity.roles.list(admin, { name: 'member' }))[0];
  assert.ok(member, 'the member role exists');
  await identity.roleAssignments.grant(admin, project.id, user.id, member.id);
  const res = await request(server)
    .post('/identity/v3/auth/tokens')
    .send(passwordAuth('dana', 'dana-password', 'data'))
    .expect(201);
  token = res.headers['x-subject-token'] as string;
});

after(async () => {
  await stack?.worker.stop();
  await backend?.close();
  await tdb?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- the API, as the member -------------------------------------------------------------------

function api(method: 'get' | 'post' | 'delete', path: string, body?: unknown) {
  const req = request(server)
    [method](path)
    .set({ 'X-Auth-Token': token, 'X-OpenStack-Manila-API-Version': '2.72' });
  return body === undefined ? req : req.send(body as object);
}

async function getShare(id: string): Promise<{ status: string; size: number }> {
  return (await api('get', `/v2/shares/${id}`).expect(200)).body.share;
}

async function getSnapshot(id: string): Promise<{ status: string; size: number }> {
  return (await api('get', `/v2/snapshots/${id}`).expect(200)).body.snapshot;
}

/** Where clients mount the share: its preferred export location. */
async function exportPath(id: string): Promise<string> {
  const res = await api('get', `/v2/shares/${id}/export_locations`).expect(200);
  const loc = res.body.export_locations.find((l: { preferred: boolean }) => l.preferred);
  assert.ok(loc, `share ${id} has a preferred export location`);
  return loc.path;
}

/** Creates a share (optionally from a snapshot), lets the worker finish it, returns its id and path. */
async function createShare(size: number, snapshotId?: string): Promise<{ id: string; path: string }> {
  const res = await api('post', '/v2/shares', {
    share: { size, share_proto: 'NFS', ...(snapshotId ? { snapshot_id: snapshotId } : {}) },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.share.status, 'creating');
  await stack.worker.drain();
  const id = res.body.share.id as string;
  assert.equal((await getShare(id)).status, 'available');
  return { id, path: await exportPath(id) };
}

async function createSnapshot(shareId: string): Promise<string> {
  const res = await api('post', '/v2/snapshots', { snapshot: { share_id: shareId } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await stack.worker.drain();
  const id = res.body.snapshot.id as string;
  assert.equal((await getSnapshot(id)).status, 'available');
  return id;
}

/** Posts a share action, checks the status it shows while queued, and runs the worker. */
async function action(id: string, body: Record<string, unknown>, pending: string): Promise<void> {
  const res = await api('post', `/v2/shares/${id}/action`, body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.equal((await getShare(id)).status, pending);
  await stack.worker.drain();
}

async function messagesFor(id: string): Promise<string[]> {
  const res = await api('get', `/v2/messages?resource_id=${id}`).expect(200);
  return res.body.messages.map((m: { user_message: string }) => m.user_message);
}

async function allocatedGiB(): Promise<number> {
  return (await backend.stats()).pools[0]?.allocatedCapacityGiB ?? Number.NaN;
}

// ---- files, as a client of the share writes them ----------------------------------------------

const MODES = [0o644, 0o600, 0o755, 0o640, 0o400, 0o664] as const;

/**
 * Many small files (0–8 KiB, ~240 of them in nested directories, with varied modes), one bigger file
 * (12 MiB), an empty directory, a directory with a narrow mode and a symlink.
 */
async function writeTree(root: string): Promise<void> {
  let n = 0;
  for (let a = 0; a < 6; a++) {
    for (let b = 0; b < 4; b++) {
      const d = join(root, `dir-${a}`, `sub-${b}`);
      await mkdir(d, { recursive: true });
      for (let i = 0; i < 10; i++, n++) {
        const p = join(d, `file-${i}.dat`);
        await writeFile(p, randomBytes((n * 997) % (8 * 1024)));
        await chmod(p, MODES[n % MODES.length] as number);
      }
    }
  }
  await mkdir(join(root, 'big'));
  await writeFile(join(root, 'big', 'blob.bin'), randomBytes(12 * MiB));
  await chmod(join(root, 'big', 'blob.bin'), 0o640);
  await mkdir(join(root, 'empty'));
  await chmod(join(root, 'empty'), 0o700);
  await chmod(join(root, 'dir-3'), 0o750);
  await symlink('big/blob.bin', join(root, 'latest'));
}

/** Changes of every kind: in place, appended, truncated, removed, re-moded, added, re-pointed. */
async function changeTree(root: string): Promise<void> {
  // In place, in the middle of the big file: what a copy that shares blocks would get wrong.
  const fh = await open(join(root, 'big', 'blob.bin'), 'r+');
  await fh.write(randomBytes(MiB), 0, MiB, 4 * MiB);
  await fh.close();
  await writeFile(join(root, 'dir-0', 'sub-0', 'file-1.dat'), randomBytes(100), { flag: 'a' });
  await writeFile(join(root, 'dir-0', 'sub-1', 'file-2.dat'), '');
  for (let i = 0; i < 10; i += 3) await unlink(join(root, 'dir-1', 'sub-2', `file-${i}.dat`));
  await rm(join(root, 'dir-2', 'sub-3'), { recursive: true });
  await chmod(join(root, 'dir-4', 'sub-0', 'file-0.dat'), 0o777);
  await chmod(join(root, 'dir-3'), 0o755);
  await mkdir(join(root, 'added', 'deep', 'er'), { recursive: true });
  await writeFile(join(root, 'added', 'deep', 'er', 'new.bin'), randomBytes(3000));
  await unlink(join(root, 'latest'));
  await symlink('dir-0/sub-0/file-1.dat', join(root, 'latest'));
}

/** Writes a file of `size` logical bytes holding data only at its start, middle and end (sparse). */
async function writeSparse(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  for (const at of [0, Math.floor(size / 2), size - 64 * 1024])
    await fh.write(randomBytes(64 * 1024), 0, 64 * 1024, at);
  await fh.close();
}

/** Every entry's checksum: type, mode, size and SHA-256 of files; mode of directories; symlink targets. */
async function treeSums(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(d: string): Promise<void> {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const st = await lstat(p);
      const rel = relative(root, p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(`${rel}/`, `dir ${mode}`);
        await walk(p);
      } else if (st.isSymbolicLink()) {
        out.set(rel, `symlink -> ${await readlink(p)}`);
      } else {
        const hash = createHash('sha256');
        const fh = await open(p, 'r');
        for await (const chunk of fh.createReadStream({ highWaterMark: 4 * MiB })) hash.update(chunk);
        out.set(rel, `file ${mode} ${st.size} ${hash.digest('hex')}`);
      }
    }
  }
  out.set('./', `dir ${((await lstat(root)).mode & 0o7777).toString(8)}`);
  await walk(root);
  return out;
}

/** Shows that a comparison is between different trees, so "equal" later means something. */
function differs(a: Map<string, string>, b: Map<string, string>): number {
  let n = 0;
  for (const k of new Set([...a.keys(), ...b.keys()])) if (a.get(k) !== b.get(k)) n++;
  return n;
}

describe('local backend data, through the API', () => {
  test('snapshot, change, extend, revert: the whole tree equals the tree at snapshot time', async () => {
    const share = await createShare(1);
    await writeTree(share.path);
    const atSnapshot = await treeSums(share.path);
    assert.ok(atSnapshot.size > 250, `${atSnapshot.size} entries`);
    const snap = await createSnapshot(share.id);

    // The share grows after the snapshot; a revert takes it back to the snapshot's size, as in Manila.
    await action(share.id, { extend: { new_size: 2 } }, 'extending');
    const extended = await getShare(share.id);
    assert.deepEqual([extended.status, extended.size], ['available', 2]);
    await changeTree(share.path);
    const changed = await treeSums(share.path);
    assert.ok(differs(atSnapshot, changed) >= 15, 'the changes touch many entries');

    await action(share.id, { revert: { snapshot_id: snap } }, 'reverting');
    const after = await getShare(share.id);
    assert.deepEqual([after.status, after.size], ['available', 1]);
    assert.equal((await getSnapshot(snap)).status, 'available');
    assert.equal(await exportPath(share.id), share.path, 'the export location stays');
    assert.deepEqual(await treeSums(share.path), atSnapshot);

    // The snapshot is still whole: change again and revert again.
    await changeTree(share.path);
    await action(share.id, { revert: { snapshot_id: snap } }, 'reverting');
    assert.deepEqual(await treeSums(share.path), atSnapshot);
  });

  test('a share created from a snapshot is independent of its source and of the snapshot', async () => {
    const source = await createShare(1);
    await writeTree(source.path);
    const atSnapshot = await treeSums(source.path);
    const snap = await createSnapshot(source.id);

    const clone = await createShare(1, snap);
    assert.notEqual(clone.path, source.path);
    assert.deepEqual(await treeSums(clone.path), atSnapshot);

    // Writing to the new share changes neither the source nor the snapshot.
    await changeTree(clone.path);
    const cloneChanged = await treeSums(clone.path);
    assert.ok(differs(atSnapshot, cloneChanged) >= 15);
    assert.deepEqual(await treeSums(source.path), atSnapshot, 'source unchanged');
    const second = await createShare(1, snap);
    assert.deepEqual(await treeSums(second.path), atSnapshot, 'snapshot unchanged by the clone');

    // Writing to the source changes neither the new share nor the snapshot.
    await changeTree(source.path);
    await writeFile(join(source.path, 'big', 'blob.bin'), randomBytes(MiB), { flag: 'a' });
    assert.deepEqual(await treeSums(clone.path), cloneChanged, 'clone unchanged by the source');
    assert.deepEqual(await treeSums(second.path), atSnapshot, 'second clone unchanged by the source');
    await action(source.id, { revert: { snapshot_id: snap } }, 'reverting');
    assert.deepEqual(await treeSums(source.path), atSnapshot, 'snapshot unchanged by the source');

    // Deleting a clone leaves the others and the snapshot.
    assert.equal((await api('delete', `/v2/shares/${second.id}`)).status, 202);
    await stack.worker.drain();
    await api('get', `/v2/shares/${second.id}`).expect(404);
    assert.deepEqual(await treeSums(clone.path), cloneChanged);
    assert.deepEqual(await treeSums(source.path), atSnapshot);
  });

  test('shrink below the space in use is refused: available, a user message, size and data unchanged', async () => {
    const share = await createShare(2);
    await writeTree(share.path);
    // Over 1 GiB in use (usage counts logical sizes, so a sparse file costs no disk).
    await writeSparse(join(share.path, 'fill.bin'), GiB);
    const before = await treeSums(share.path);
    const allocated = await allocatedGiB();

    await action(share.id, { shrink: { new_size: 1 } }, 'shrinking');
    const refused = await getShare(share.id);
    assert.deepEqual([refused.status, refused.size], ['available', 2]);
    const messages = await messagesFor(share.id);
    assert.equal(messages.length, 1, messages.join('\n'));
    assert.match(messages[0] ?? '', /not shrunk to 1 GiB.*more than the requested 1 GiB.*unchanged/s);
    assert.equal(await allocatedGiB(), allocated, 'the backend kept the size');
    assert.deepEqual(await treeSums(share.path), before, 'data intact');

    // The refusal was about the data: without the fill the same shrink goes through.
    await unlink(join(share.path, 'fill.bin'));
    await action(share.id, { shrink: { new_size: 1 } }, 'shrinking');
    const shrunk = await getShare(share.id);
    assert.deepEqual([shrunk.status, shrunk.size], ['available', 1]);
    assert.equal(await allocatedGiB(), allocated - 1);
    before.delete('fill.bin');
    assert.deepEqual(await treeSums(share.path), before);
  });

  test('extend, then hold more than the old size: usage counts it, shrinking back is refused, capacity is accounted', async () => {
    const share = await createShare(1);
    const ref = { id: share.id, size: 1, shareProto: 'NFS' as const, pool: 'local' };
    const allocated = await allocatedGiB();
    await action(share.id, { extend: { new_size: 3 } }, 'extending');
    assert.deepEqual((await getShare(share.id)).size, 3);
    assert.equal(await allocatedGiB(), allocated + 2);

    // A directory has no quota (docs/backends.md): nothing stops a client at 1 GiB, and what it wrote
    // is counted. 1.125 GiB (and the tree) fit the new size, not the old one.
    await writeTree(share.path);
    await writeSparse(join(share.path, 'fill.bin'), GiB + 128 * MiB);
    const usage = await backend.usage(ref);
    assert.ok(usage.usedBytes > GiB + 128 * MiB && usage.usedBytes < 2 * GiB, `used ${usage.usedBytes}`);
    const before = await treeSums(share.path);

    await action(share.id, { shrink: { new_size: 1 } }, 'shrinking');
    assert.deepEqual((await getShare(share.id)).size, 3);
    assert.match((await messagesFor(share.id)).join('\n'), /not shrunk to 1 GiB/);
    await action(share.id, { shrink: { new_size: 2 } }, 'shrinking');
    const shrunk = await getShare(share.id);
    assert.deepEqual([shrunk.status, shrunk.size], ['available', 2]);
    assert.equal(await allocatedGiB(), allocated + 1);

    // The pool's capacity is what sizes are accounted against: an extend past it fails in the backend.
    const free = CAPACITY_GIB - (await allocatedGiB());
    await action(share.id, { extend: { new_size: 2 + free + 1 } }, 'extending');
    const failed = await getShare(share.id);
    assert.deepEqual([failed.status, failed.size], ['extending_error', 2]);
    assert.match((await messagesFor(share.id)).join('\n'), /Not enough free capacity/);
    assert.equal(await allocatedGiB(), allocated + 1, 'nothing allocated by the failed extend');
    assert.deepEqual(await treeSums(share.path), before, 'data intact through all of it');
  });
});
