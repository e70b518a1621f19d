/**
 * The plugin's pure parts, table-driven (as csi-driver-nfs tests its validation): capacity ranges,
 * capabilities, StorageClass parameters, topology, paging tokens, node ids, the secrets' key
 * names, the mountinfo parser, error mapping and the socket endpoint.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ApiError } from '../../cli/client/errors.ts';
import { parseMountinfo } from '../../client/mount/mountinfo.ts';
import {
  checkCapability,
  codeForDetail,
  GiB,
  isReadOnlyMode,
  parseParameters,
  parseToken,
  requestedZones,
  sizeGiB,
} from '../../csi/controller.ts';
import { CsiError, fromApiError } from '../../csi/errors.ts';
import { checkDriverName } from '../../csi/identity.ts';
import { mountFailure } from '../../csi/node.ts';
import { formatNodeId, parseNodeId, ruleMatchesIp } from '../../csi/node-id.ts';
import { credentialsEnv, credentialsFromSecrets } from '../../csi/secrets.ts';
import { csiLogger, socketPath, summarize } from '../../csi/server.ts';
import type { VolumeCapability } from '../../csi/types.ts';

const code = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (err) {
    if (!(err instanceof CsiError)) throw err;
    return status[err.code];
  }
};

test('sizeGiB rounds up to whole GiB and checks the limit', () => {
  const g = Number(GiB);
  const cases: [string, string, number | string][] = [
    ['0', '0', 1],
    ['1', '0', 1],
    [String(g), '0', 1],
    [String(g + 1), '0', 2],
    [String(10 * g), String(10 * g), 10],
    ['0', String(g / 2), 'OUT_OF_RANGE'],
    [String(3 * g), String(2 * g), 'INVALID_ARGUMENT'],
    ['-1', '0', 'INVALID_ARGUMENT'],
  ];
  for (const [required_bytes, limit_bytes, want] of cases) {
    let got: number | string;
    try {
      got = sizeGiB({ required_bytes, limit_bytes });
    } catch (err) {
      got = status[(err as CsiError).code];
    }
    assert.equal(got, want, `${required_bytes}/${limit_bytes}`);
  }
  assert.equal(sizeGiB(null), 1);
  assert.equal(sizeGiB(null, 5), 5, 'at least the source’s size');
});

test('capabilities: mount volumes of any known mode; block and unknown refused', () => {
  const mount = { fs_type: '', mount_flags: [], volume_mount_group: '' };
  const cases: [VolumeCapability | null, string][] = [
    [{ mount, access_type: 'mount', access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }, 'OK'],
    [{ mount, access_type: 'mount', access_mode: { mode: 'SINGLE_NODE_WRITER' } }, 'OK'],
    [{ mount, access_type: 'mount', access_mode: { mode: 'MULTI_NODE_READER_ONLY' } }, 'OK'],
    [
      { block: {}, access_type: 'block', access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } },
      'INVALID_ARGUMENT',
    ],
    [{ mount, access_type: 'mount', access_mode: { mode: 'UNKNOWN' } }, 'INVALID_ARGUMENT'],
    [{ mount, access_type: 'mount', access_mode: null }, 'INVALID_ARGUMENT'],
    [{ access_mode: { mode: 'SINGLE_NODE_WRITER' } }, 'INVALID_ARGUMENT'],
    [null, 'INVALID_ARGUMENT'],
  ];
  for (const [cap, want] of cases)
    assert.equal(
      code(() => checkCapability(cap, 'T')),
      want,
      JSON.stringify(cap),
    );
  assert.equal(isReadOnlyMode({ mount, access_mode: { mode: 'SINGLE_NODE_READER_ONLY' } }), true);
  assert.equal(isReadOnlyMode({ mount, access_mode: { mode: 'MULTI_NODE_SINGLE_WRITER' } }), false);
});

test('StorageClass parameters', () => {
  assert.deepEqual(parseParameters({}), { type: null, availability: null, autoTopology: true, metadata: {} });
  assert.deepEqual(
    parseParameters({
      type: 'gold',
      availability: 'az1',
      autoTopology: 'false',
      appendShareMetadata: '{"a":"b"}',
      'csi.storage.k8s.io/pvc/name': 'data',
    }),
    {
      type: 'gold',
      availability: 'az1',
      autoTopology: false,
      metadata: { a: 'b', 'csi.storage.k8s.io/pvc/name': 'data' },
    },
  );
  const bads: Record<string, string>[] = [
    { shareNetworkID: 'x' },
    { autoTopology: 'yes' },
    { appendShareMetadata: 'nope' },
    { appendShareMetadata: '{"a":1}' },
  ];
  for (const bad of bads)
    assert.equal(
      code(() => parseParameters(bad)),
      'INVALID_ARGUMENT',
      JSON.stringify(bad),
    );
});

test('topology: preferred zones first, then requisite, each once', () => {
  const t = (z: string) => ({ segments: { 'topology.abaca.io/zone': z } });
  assert.deepEqual(requestedZones(null), []);
  assert.deepEqual(requestedZones({ requisite: [t('a'), t('b')], preferred: [t('b')] }), ['b', 'a']);
  assert.deepEqual(requestedZones({ requisite: [{ segments: { other: 'x' } }], preferred: [] }), []);
});

test('paging tokens', () => {
  assert.equal(parseToken('', 'T'), 0);
  assert.equal(parseToken('40', 'T'), 40);
  for (const bad of ['-1', 'x', '1e3', '9999999999'])
    assert.equal(
      code(() => parseToken(bad, 'T')),
      'ABORTED',
      bad,
    );
});

test('node ids carry the address', () => {
  assert.equal(formatNodeId('worker-1', '10.0.0.5'), 'worker-1@10.0.0.5');
  assert.deepEqual(parseNodeId('worker-1@10.0.0.5'), { name: 'worker-1', ip: '10.0.0.5' });
  assert.deepEqual(parseNodeId('a@b@fd00::1'), { name: 'a@b', ip: 'fd00::1' });
  assert.deepEqual(parseNodeId('10.0.0.9'), { name: '10.0.0.9', ip: '10.0.0.9' });
  for (const bad of ['worker-1', 'worker@', '@', 'x@300.1.1.1']) assert.equal(parseNodeId(bad), null, bad);
  assert.equal(ruleMatchesIp('10.0.0.5', '10.0.0.5'), true);
  assert.equal(ruleMatchesIp('10.0.0.5/32', '10.0.0.5'), true);
  assert.equal(ruleMatchesIp('10.0.0.0/24', '10.0.0.5'), false, 'a network is not the node’s own rule');
  assert.equal(ruleMatchesIp('fd00:0::1', 'fd00::1'), true);
});

test('secrets in Manila CSI’s key names', () => {
  const app = credentialsFromSecrets(
    {
      'os-authURL': 'http://k/identity/v3',
      'os-region': 'R1',
      'os-applicationCredentialID': 'id1',
      'os-applicationCredentialSecret': 's3cret',
    },
    'T',
  );
  assert.deepEqual(app.credentials, {
    type: 'application_credential',
    authUrl: 'http://k/identity/v3',
    id: 'id1',
    name: undefined,
    username: undefined,
    userId: undefined,
    userDomain: undefined,
    secret: 's3cret',
  });
  assert.equal(app.region, 'R1');
  assert.deepEqual(credentialsEnv(app), {
    OS_AUTH_URL: 'http://k/identity/v3',
    OS_REGION_NAME: 'R1',
    OS_AUTH_TYPE: 'v3applicationcredential',
    OS_APPLICATION_CREDENTIAL_ID: 'id1',
    OS_APPLICATION_CREDENTIAL_SECRET: 's3cret',
  });
  const user = credentialsFromSecrets(
    {
      'os-authURL': 'http://k',
      'os-userName': 'u',
      'os-password': 'p',
      'os-projectName': 'proj',
      'os-domainName': 'Default',
    },
    'T',
  );
  assert.deepEqual(credentialsEnv(user), {
    OS_AUTH_URL: 'http://k',
    OS_AUTH_TYPE: 'password',
    OS_USERNAME: 'u',
    OS_PASSWORD: 'p',
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_NAME: 'proj',
    OS_PROJECT_DOMAIN_NAME: 'Default',
  });
  const missing: Record<string, string>[] = [
    {},
    { 'os-userName': 'u' },
    { 'os-authURL': 'http://k', 'os-applicationCredentialID': 'x' },
    { 'os-authURL': 'http://k', 'os-userName': 'u', 'os-projectName': 'p' },
    { 'os-authURL': 'http://k', 'os-userName': 'u', 'os-password': 'p' },
    { 'os-authURL': 'http://k' },
  ];
  for (const s of missing) {
    let msg = '';
    assert.equal(
      code(() => {
        try {
          credentialsFromSecrets(s, 'CreateVolume');
        } catch (err) {
          msg = (err as Error).message;
          throw err;
        }
      }),
      'INVALID_ARGUMENT',
      JSON.stringify(s),
    );
    assert.match(msg, /^CreateVolume: /);
    for (const v of Object.values(s))
      if (v.length > 3) assert.equal(msg.includes(v), false, 'no value in the message');
  }
});

test('mountinfo parsing, escapes included', () => {
  const text = [
    '36 35 98:0 / /mnt/a\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
    '40 36 0:50 / /var/lib/kubelet/staging ro,nosuid shared:7 - fuse.abaca abaca://10.0.0.1:7400/abc rw,user_id=0',
  ].join('\n');
  assert.deepEqual(parseMountinfo(text), [
    { root: '/', mountPoint: '/mnt/a dir', options: ['rw', 'noatime'], fsType: 'ext3', source: '/dev/root' },
    {
      root: '/',
      mountPoint: '/var/lib/kubelet/staging',
      options: ['ro', 'nosuid'],
      fsType: 'fuse.abaca',
      source: 'abaca://10.0.0.1:7400/abc',
    },
  ]);
});

test('errors: API statuses, share user messages and mount failures map to gRPC codes', () => {
  const api = (s: number) => new ApiError('m', s, null, null, 'GET', 'http://x');
  const cases: [number, string][] = [
    [400, 'INVALID_ARGUMENT'],
    [401, 'UNAUTHENTICATED'],
    [403, 'PERMISSION_DENIED'],
    [404, 'NOT_FOUND'],
    [409, 'FAILED_PRECONDITION'],
    [413, 'RESOURCE_EXHAUSTED'],
    [500, 'UNAVAILABLE'],
    [503, 'UNAVAILABLE'],
  ];
  for (const [s, want] of cases) assert.equal(status[fromApiError(api(s), 'T').code], want, String(s));
  assert.equal(status[codeForDetail('002')], 'RESOURCE_EXHAUSTED');
  assert.equal(status[codeForDetail('104')], 'FAILED_PRECONDITION');
  assert.equal(status[codeForDetail(undefined)], 'INTERNAL');
  const mounts: [string, string][] = [
    ['Cannot mount x: no access rule of share x allows 10.0.0.5', 'PERMISSION_DENIED'],
    ['Cannot mount x: cannot reach the share server at h:1 (ECONNREFUSED)', 'UNAVAILABLE'],
    ['The request you have made requires authentication. (HTTP 401)', 'UNAUTHENTICATED'],
    ['something else', 'INTERNAL'],
  ];
  for (const [msg, want] of mounts) assert.equal(status[mountFailure(new Error(msg), 'T').code], want, msg);
});

test('driver names, endpoints and what a call logs', () => {
  assert.equal(checkDriverName('csi.abaca.io'), null);
  for (const bad of ['', 'Csi.abaca.io', '-x', 'x-', 'a'.repeat(64), 'a_b'])
    assert.notEqual(checkDriverName(bad), null, bad);
  assert.equal(socketPath('unix:///csi/csi.sock'), '/csi/csi.sock');
  assert.equal(socketPath('unix:/csi/csi.sock'), '/csi/csi.sock');
  assert.throws(() => socketPath('tcp://1.2.3.4:5'), /unix:/);
  assert.deepEqual(
    summarize({ name: 'pvc-1', secrets: { 'os-password': 'p' }, volume_context: { a: 'b' }, max_entries: 0 }),
    { name: 'pvc-1' },
  );
});

test('the logger redacts CSI secrets, tokens and database error values at every level', () => {
  const lines: string[] = [];
  const log = csiLogger('trace', 'all', { write: (line: string) => void lines.push(line) });
  const secrets = { 'os-password': 'pw-SECRET-1', 'os-applicationCredentialSecret': 'ac-SECRET-2' };
  const dbError = Object.assign(new Error('insert failed'), {
    code: '22P05',
    severity: 'ERROR',
    detail: 'Key (name)=(hash-SECRET-3)',
    params: ['hash-SECRET-4'],
  });
  log.trace({ secrets }, 'request');
  log.info({ req: { secrets, token: 'tok-SECRET-5' } }, 'nested');
  log.error({ err: dbError, headers: { 'x-auth-token': 'tok-SECRET-6' } }, 'failed');
  assert.equal(lines.length, 3);
  const out = lines.join('');
  assert.doesNotMatch(out, /SECRET/);
  assert.match(out, /"service":"abaca-csi","mode":"all"/);
  assert.match(out, /insert failed/);
});
