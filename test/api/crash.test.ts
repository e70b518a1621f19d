import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { tempDir } from '../helpers/db.ts';
import { requestPasswordToken, type ServerProcess, startServerProcess } from '../helpers/process.ts';

// Invariant 4: after a crash every operation completes or ends in an error status; nothing hangs.
const data = tempDir('abaca-crash-test');
let server: ServerProcess | null = null;
after(async () => {
  await server?.stop('SIGKILL');
  data.remove();
});

const env = {
  ABACA_DATA_DIR: data.path,
  ABACA_ADMIN_PASSWORD: 'crash-admin-password',
  ABACA_TASK_LEASE_SECONDS: '2',
  // A backend slow enough that the create is certainly in flight when the server is killed.
  ABACA_BACKENDS: JSON.stringify([
    { name: 'slow', driver: 'memory', options: { delays: { createShare: 1500 } } },
  ]),
};

async function token(url: string): Promise<string> {
  const res = await requestPasswordToken(url, env.ABACA_ADMIN_PASSWORD);
  return res.headers.get('x-subject-token') as string;
}

test('SIGKILL during a create: after a restart the share ends available, not stuck in creating', {
  timeout: 120_000,
}, async () => {
  server = await startServerProcess(env);
  const headers = { 'content-type': 'application/json', 'X-Auth-Token': await token(server.url) };
  const res = await fetch(`${server.url}/v2/shares`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ share: { size: 1, share_proto: 'NFS', name: 'interrupted' } }),
  });
  assert.equal(res.status, 200);
  const { share } = (await res.json()) as { share: { id: string; status: string } };
  assert.equal(share.status, 'creating');
  await new Promise((r) => setTimeout(r, 500)); // the worker has claimed the task and waits in the backend
  await server.stop('SIGKILL');

  server = await startServerProcess(env);
  const again = { 'X-Auth-Token': await token(server.url) };
  let status = 'creating';
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && status === 'creating') {
    await new Promise((r) => setTimeout(r, 300));
    const shown = await fetch(`${server.url}/v2/shares/${share.id}`, { headers: again });
    status = ((await shown.json()) as { share: { status: string } }).share.status;
  }
  assert.equal(status, 'available', 'the reclaimed task finished the create');
  await server.stop();
});
