// The API fuzz suite (issue 21): every route of the share and identity APIs — read from the app's
// own router, so a new route is fuzzed without touching this file — gets generated bad bodies,
// query strings, headers and path ids, as admin, member, reader, a member of another project and
// anonymous. Each response must be below 500 with a Manila fault body (and Keystone's `error`
// under /identity), the log must hold no unhandled error, and the server must still answer.
//
// Seeded and bounded: FUZZ_SEED (default 21) and FUZZ_RUNS (cases per route, default 20) make a
// run repeatable and short enough for `npm test`; FUZZ_LONG=1 runs 400 cases per route (a few
// minutes per seed; try several seeds). A failure prints the seed and fast-check's replay path.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { faultName } from '../../services/errors.ts';
import { passwordAuth, STATIC_ADMIN_TOKEN } from '../helpers/app.ts';
import { type ShareFixture, shareFixture } from '../helpers/share-fixture.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 21);
const RUNS = Number(process.env.FUZZ_RUNS ?? (process.env.FUZZ_LONG ? 400 : 20));

interface Route {
  methods: string[];
  path: string;
}

/** The app's routes, as @koa/router keeps them (nested routers are flattened into the root). */
function routesOf(f: ShareFixture): Route[] {
  const out: Route[] = [];
  for (const mw of f.t.app.middleware as unknown as { router?: { stack: Route[] } }[])
    for (const layer of mw.router?.stack ?? [])
      if (layer.methods.length > 0 && /^\/(v1|v2|identity|$)/.test(layer.path))
        out.push({ methods: layer.methods.filter((m) => m !== 'HEAD'), path: layer.path });
  return out;
}

// ---- what the generators draw from ----------------------------------------------------------

/** Strings that have broken servers: control and non-BMP characters, lone surrogates, sizes. */
/** The character that broke the server (U+0000), and others a database or a log may mangle. */
const BAD_CHARS = [
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\ud800',
  '\udfff',
  '\ufffe',
  '😀',
  '\u202e',
  '\n',
];
/** An ordinary word with one bad character in it: what gets past "must be a string" checks. */
const spiked = fc
  .tuple(fc.constantFrom('name', 'abc', 'x'), fc.constantFrom(...BAD_CHARS), fc.constantFrom('', 'z', '-1'))
  .map(([a, c, b]) => `${a}${c}${b}`);

const nastyString = fc.oneof(
  { arbitrary: spiked, weight: 4 },
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '\u202e\u200b',
    '😀🂡𝔘',
    '\t\n\r',
    "'; DROP TABLE shares; --",
    '%00',
    '../../etc/passwd',
    '9223372036854775807',
    '-1',
    '1e400',
    'NaN',
    'true',
    'null',
    '00000000-0000-0000-0000-000000000000',
    '{"a": 1}',
    "{'k': 'v'}",
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), maxLength: 8 }),
  fc.integer({ min: 256, max: 70_000 }).map((n) => 'x'.repeat(n)),
  fc.uuid(),
);

const nastyNumber = fc.oneof(
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 63), 2 ** 63, 1e308, -1e308, 0.5, -0.0),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Field names the APIs read, so generated bodies reach past the first "unknown key" check. */
const FIELDS = [
  'name',
  'description',
  'display_name',
  'display_description',
  'size',
  'new_size',
  'share_proto',
  'share_type',
  'share_type_id',
  'snapshot_id',
  'share_id',
  'metadata',
  'meta',
  'extra_specs',
  'is_public',
  'availability_zone',
  'share_network_id',
  'share_group_id',
  'scheduler_hints',
  'access_type',
  'access_to',
  'access_level',
  'access_id',
  'status',
  'force',
  'password',
  'original_password',
  'domain_id',
  'enabled',
  'default_project_id',
  'secret',
  'roles',
  'expires_at',
  'unrestricted',
  'project',
  'shares',
  'gigabytes',
  'snapshots',
  'snapshot_gigabytes',
  'share_networks',
  'per_share_gigabytes',
  'user_id',
  'driver_handles_share_servers',
  'snapshot_support',
  'share_type_access:is_public',
  'os-share-type-access:is_public',
  'mode',
  'methods',
  'identity',
  'scope',
  'user',
  'id',
  'domain',
  'application_credential',
  'description~',
];
const WRAPPERS = [
  'share',
  'snapshot',
  'share_type',
  'volume_type',
  'user',
  'project',
  'domain',
  'role',
  'application_credential',
  'quota_set',
  'metadata',
  'meta',
  'extra_specs',
  'auth',
  'access',
  'extend',
  'shrink',
  'revert',
  'allow_access',
  'deny_access',
  'os-allow_access',
  'reset_status',
  'os-reset_status',
  'force_delete',
  'os-force_delete',
  'soft_delete',
  'restore',
  'unmanage',
  'addProjectAccess',
  'removeProjectAccess',
  'heal',
  'heal_resolve',
  'access_list',
  'reset_task_state',
];
const QUERY_KEYS = [
  'limit',
  'offset',
  'marker',
  'sort_key',
  'sort_dir',
  'name',
  'name~',
  'description',
  'description~',
  'status',
  'share_id',
  'share_type_id',
  'snapshot_id',
  'share_server_id',
  'all_tenants',
  'project_id',
  'is_public',
  'is_soft_deleted',
  'export_location_id',
  'export_location_path',
  'availability_zone',
  'host',
  'metadata',
  'extra_specs',
  'with_count',
  'resource_id',
  'resource_type',
  'message_level',
  'usage',
  'size',
  'domain_id',
  'enabled',
  'user.id',
  'scope.project.id',
  'include_names',
  'effective',
  'nocatalog',
  'allow_expired',
  'share_type',
  'user_id',
  'force',
  'backend',
  'pool',
];

// biome-ignore lint/suspicious/noExplicitAny: fast-check's letrec is typed loosely by design.
const { value: nastyValue } = fc.letrec<{ value: any }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyString,
    nastyNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), nastyString), tie('value'), { maxKeys: 4 }),
  ),
}));

/** For URLs: the same strings, cut below Node's 16 KiB header limit (Node answers 431 before the app). */
const urlString = nastyString.map((s) => s.slice(0, 1500));

/**
 * A valid body per route (path ids filled in at run time), so a mutation of one field reaches past
 * the schema's other checks to the service and the database — where the probe's 500s were.
 */
function templates(method: string, path: string): unknown[] {
  const key = `${method} ${path}`;
  const project = ids.projects?.[0] ?? 'p';
  const share = ids.shares?.[0] ?? 's';
  const t: Record<string, unknown[]> = {
    'POST /identity/v3/auth/tokens': [
      passwordAuth('admin', 'wrong-password', 'admin'),
      {
        auth: {
          identity: {
            methods: ['application_credential'],
            application_credential: { id: ids.application_credentials?.[0], secret: 's' },
          },
        },
      },
    ],
    'POST /identity/v3/domains': [{ domain: { name: 'd', description: 'd', enabled: true } }],
    'PATCH /identity/v3/domains/:id': [{ domain: { name: 'd2', description: 'd' } }],
    'POST /identity/v3/projects': [
      { project: { name: 'p', description: 'd', domain_id: 'default', enabled: true } },
    ],
    'PATCH /identity/v3/projects/:id': [{ project: { name: 'p2', description: 'd' } }],
    'POST /identity/v3/users': [
      { user: { name: 'u', password: 'pw-0123456789', default_project_id: project, description: 'd' } },
    ],
    'PATCH /identity/v3/users/:id': [{ user: { name: 'u2', description: 'd', password: 'pw-0123456789' } }],
    'POST /identity/v3/users/:id/password': [
      { user: { original_password: 'fuzz-password-1', password: 'pw-2' } },
    ],
    'POST /identity/v3/roles': [{ role: { name: 'r', description: 'd' } }],
    'PATCH /identity/v3/roles/:id': [{ role: { name: 'r2' } }],
    'POST /identity/v3/users/:userId/application_credentials': [
      {
        application_credential: {
          name: 'a',
          description: 'd',
          secret: 's',
          expires_at: '2099-01-01T00:00:00Z',
        },
      },
    ],
    'POST /v2/types': [
      {
        share_type: {
          name: 't',
          description: 'd',
          extra_specs: { driver_handles_share_servers: false, k: 'v' },
        },
      },
    ],
    'PUT /v2/types/:id': [{ share_type: { name: 't2', description: 'd' } }],
    'POST /v2/types/:id/extra_specs': [{ extra_specs: { k: 'v' } }],
    'PUT /v2/types/:id/extra_specs/:key': [{ color: 'blue' }],
    'POST /v2/types/:id/action': [{ addProjectAccess: { project } }, { removeProjectAccess: { project } }],
    'POST /v2/shares': [
      {
        share: {
          share_proto: 'NFS',
          size: 1,
          name: 'n',
          description: 'd',
          metadata: { k: 'v' },
          availability_zone: 'nova',
        },
      },
    ],
    'PUT /v2/shares/:id': [{ share: { display_name: 'n', display_description: 'd', is_public: false } }],
    'POST /v2/shares/:id/metadata': [{ metadata: { k: 'v' } }],
    'PUT /v2/shares/:id/metadata': [{ metadata: { k: 'v' } }],
    'PUT /v2/shares/:id/metadata/:key': [{ meta: { k: 'v' } }],
    'POST /v2/shares/:id/action': [
      { extend: { new_size: 2 } },
      { shrink: { new_size: 1 } },
      {
        allow_access: { access_type: 'ip', access_to: '10.0.0.2', access_level: 'ro', metadata: { k: 'v' } },
      },
      { deny_access: { access_id: ids['share-access-rules']?.[0] } },
      { reset_status: { status: 'available' } },
      { revert: { snapshot_id: ids.snapshots?.[0] } },
    ],
    'POST /v2/snapshots': [{ snapshot: { share_id: share, name: 'n', description: 'd' } }],
    'PUT /v2/snapshots/:id': [{ snapshot: { display_name: 'n', display_description: 'd' } }],
    'POST /v2/snapshots/:id/action': [{ reset_status: { status: 'available' } }],
    'PUT /v2/share-access-rules/:id/metadata': [{ metadata: { k: 'v' } }],
    'PUT /v2/quota-sets/:project': [{ quota_set: { shares: 10, gigabytes: 100, snapshots: 5 } }],
    'PUT /v2/os-quota-sets/:project': [{ quota_set: { shares: 10, gigabytes: 100 } }],
    'POST /v2/share_instances/:id/action': [{ reset_status: { status: 'available' } }],
  };
  return t[key] ?? [];
}

/** Every path to a leaf (or an object) of a JSON value. */
function pathsOf(v: unknown, at: string[] = []): string[][] {
  if (v === null || typeof v !== 'object') return [at];
  return [at, ...Object.entries(v).flatMap(([k, x]) => pathsOf(x, [...at, k]))];
}

/** The template with one change: a field replaced by a bad value, removed, or a key added. */
function mutated(templatesFor: unknown[]): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.constantFrom(...templatesFor),
      fc.nat(),
      fc.constantFrom('replace', 'replace', 'replace', 'delete', 'add-key'),
      nastyValue,
      fc.oneof(spiked, fc.constantFrom(...FIELDS)),
    )
    .map(([tpl, n, op, bad, newKey]) => {
      const copy = structuredClone(tpl) as Record<string, unknown>;
      const paths = pathsOf(copy).filter((p) => p.length > 0);
      const target = paths[n % paths.length] as string[];
      const parent = target
        .slice(0, -1)
        .reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, copy);
      const last = target.at(-1) as string;
      if (op === 'delete') delete parent[last];
      else if (op === 'add-key' && parent[last] !== null && typeof parent[last] === 'object')
        (parent[last] as Record<string, unknown>)[newKey] = bad;
      else parent[last] = bad;
      return JSON.stringify(copy);
    });
}

/** A JSON body: shaped like the APIs' (wrapper → fields), arbitrary JSON, or raw bad bytes. */
const body = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 1 },
  {
    arbitrary: fc
      .dictionary(
        fc.constantFrom(...WRAPPERS),
        fc.oneof(fc.dictionary(fc.constantFrom(...FIELDS), nastyValue, { maxKeys: 6 }), nastyValue),
        { minKeys: 1, maxKeys: 2 },
      )
      .map((o) => JSON.stringify(o)),
    weight: 6,
  },
  { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)), weight: 2 },
  {
    arbitrary: fc.oneof(
      fc.constantFrom('{', '{"share": ', '[', 'null', '""', '{"a":1}{"b":2}', '\u0000', '{"x": "\\ud800"}'),
      fc.integer({ min: 40, max: 20_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
      fc.integer({ min: 40, max: 5_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
      fc.constant(`{"share": {"name": "${'x'.repeat(2_000_000)}"}}`),
    ),
    weight: 1,
  },
);

const queryString = fc
  .array(
    fc.tuple(
      fc.oneof({ arbitrary: fc.constantFrom(...QUERY_KEYS), weight: 5 }, { arbitrary: urlString, weight: 1 }),
      fc.oneof(urlString, nastyNumber.map(String)),
    ),
    { maxLength: 3 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&'));

/** Percent-encodes like a browser, and lone surrogates as the invalid UTF-8 a raw client may send. */
function pct(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return s.replace(/[\s\S]/gu, (c) => (/\p{Cs}/u.test(c) ? '%ED%A0%80' : encodeURIComponent(c)));
  }
}

/** Header values a client can send (printable, no CR/LF): microversions, content types, ids. */
const headerValue = fc.oneof(
  fc.constantFrom(
    '2.72',
    '2.72',
    '2.0',
    '2.7',
    '2.45',
    '1.0',
    '2.999',
    '3.0',
    'latest',
    '',
    'shared-file-system 2.72',
  ),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 }),
);
const headers = fc.record(
  {
    'X-OpenStack-Manila-API-Version': headerValue,
    'OpenStack-API-Version': headerValue,
    'Content-Type': fc.constantFrom(
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      '',
    ),
    'X-Openstack-Request-Id': headerValue,
    'X-Subject-Token': headerValue,
  },
  { requiredKeys: [] },
);

// ---- the app and the resources path ids point at --------------------------------------------

let f: ShareFixture;
let routes: Route[];
const ids: Record<string, string[]> = {};
const roles = ['admin', 'member', 'reader', 'other', 'anonymous'] as const;

before(async () => {
  f = await shareFixture();
  const h = () => f.t.http();
  const as = f.as(f.admin);
  const created = async (path: string, payload: object, key: string) => {
    const res = await h().post(path).set(as).send(payload);
    assert.ok(res.status < 300, `${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body[key].id as string;
  };
  const domain = await created('/identity/v3/domains', { domain: { name: 'fuzz' } }, 'domain');
  const project = await created('/identity/v3/projects', { project: { name: 'fuzz' } }, 'project');
  const user = await created(
    '/identity/v3/users',
    { user: { name: 'fuzz', password: 'fuzz-password-1' } },
    'user',
  );
  const role = await created('/identity/v3/roles', { role: { name: 'fuzz' } }, 'role');
  const cred = await created(
    `/identity/v3/users/${f.t.adminUserId}/application_credentials`,
    { application_credential: { name: 'fuzz' } },
    'application_credential',
  );
  const type = await created(
    '/v2/types',
    { share_type: { name: 'fuzz', extra_specs: { driver_handles_share_servers: false, color: 'red' } } },
    'share_type',
  );
  const share = await f.newShare({ name: 'fuzz', metadata: { k: 'v' } });
  const snapshot = await f.newSnapshot(share);
  const rule = await f.action(share, {
    allow_access: { access_type: 'ip', access_to: '10.0.0.1', metadata: { k: 'v' } },
  });
  await f.drain();
  const els = await h().get(`/v2/shares/${share}/export_locations`).set(as).expect(200);
  Object.assign(ids, {
    domains: [domain],
    projects: [project],
    users: [user],
    userId: [user, f.t.adminUserId],
    roles: [role],
    application_credentials: [cred],
    types: [type, 'default'],
    shares: [share],
    share_instances: [share],
    snapshots: [snapshot],
    'share-access-rules': [rule.body.access?.id ?? share],
    messages: [],
    elId: els.body.export_locations.map((e: { id: string }) => e.id),
    key: ['k', 'color', 'driver_handles_share_servers'],
  });
  routes = routesOf(f);
});
after(() => f.t.close());

/** Real ids for a path parameter: the collection it follows, or its own name. */
function realIds(path: string, param: string): string[] {
  if (ids[param]) return ids[param];
  const before =
    path
      .slice(0, path.indexOf(`:${param}`))
      .split('/')
      .filter(Boolean)
      .at(-1) ?? '';
  if (param === 'project' || param === 'projectId') return ids.projects ?? [];
  return ids[before] ?? [];
}

function pathArb(path: string): fc.Arbitrary<string> {
  const parts = path.split('/').map((seg) => {
    if (!seg.startsWith(':')) return fc.constant(seg);
    const real = realIds(path, seg.slice(1));
    return fc.oneof(
      { arbitrary: real.length > 0 ? fc.constantFrom(...real) : fc.uuid(), weight: 4 },
      { arbitrary: urlString.map(pct), weight: 3 },
      { arbitrary: fc.constantFrom('', '%ED%A0%80', '%FF', '%', '..', '%2F'), weight: 1 },
    );
  });
  return fc.tuple(...parts).map((p) => p.join('/'));
}

function tokenFor(role: (typeof roles)[number]): string | undefined {
  return {
    admin: f.admin,
    member: f.alice.token,
    reader: f.reader.token,
    other: f.bob.token,
    anonymous: undefined,
  }[role];
}

/** What every response must be: no 5xx; a fault body naming its status; JSON when there is a body. */
function checkResponse(
  what: string,
  res: { status: number; body: unknown; text?: string; headers: Record<string, string> },
  method: string,
) {
  assert.ok(res.status < 500, `${what} → ${res.status} ${res.text?.slice(0, 300)}`);
  assert.match(res.headers['x-openstack-request-id'] ?? '', /^req-/, `${what}: no request id`);
  if (res.status < 400 || method === 'HEAD') return;
  const b = res.body as Record<string, { code?: number; message?: unknown }>;
  const fault = b?.[faultName(res.status)];
  assert.ok(
    fault,
    `${what} → ${res.status} without a '${faultName(res.status)}' fault: ${res.text?.slice(0, 300)}`,
  );
  assert.equal(fault.code, res.status, what);
  assert.equal(typeof fault.message, 'string', what);
  if (what.includes(' /identity')) assert.equal(b.error?.code, res.status, `${what}: no Keystone error body`);
}

async function stillAnswers() {
  await f.t.http().get('/healthz').expect(200);
  // The static admin token: generated requests may revoke or disable what a user token rests on.
  await f.t.http().get('/v2/shares').set(f.as(STATIC_ADMIN_TOKEN)).expect(200);
}

describe(`fuzz every route (seed ${SEED}, ${RUNS} cases each)`, () => {
  test('every share and identity route is covered', () => {
    const paths = routes.map((r) => r.path);
    assert.ok(routes.length > 100, `only ${routes.length} routes found`);
    for (const p of ['/identity/v3/auth/tokens', '/v2/shares/:id/action', '/v2/types/:id/extra_specs/:key'])
      assert.ok(paths.includes(p), p);
  });

  test('each route: no 5xx, a fault body, the server still answers', async () => {
    let cases = 0;
    for (const route of routes) {
      for (const method of route.methods) {
        const property = fc.asyncProperty(
          fc.constantFrom(...roles),
          pathArb(route.path),
          queryString,
          headers,
          method === 'GET' || method === 'DELETE'
            ? fc.option(body, { freq: 4 })
            : templates(method, route.path).length > 0
              ? fc.oneof(
                  { arbitrary: mutated(templates(method, route.path)), weight: 4 },
                  { arbitrary: body, weight: 1 },
                )
              : body,
          fc.boolean(),
          async (role, path, query, hdrs, payload, head) => {
            // HEAD only without a body: Node itself refuses a HEAD with one, before the app sees it.
            const m = method === 'GET' && head && payload == null ? 'HEAD' : method;
            const url = query ? `${path}?${query}` : path;
            let req = f.t.http()[m.toLowerCase() as 'get'](url);
            const token = tokenFor(role);
            if (token) req = req.set('X-Auth-Token', token);
            for (const [k, v] of Object.entries(hdrs)) if (v !== undefined) req = req.set(k, v);
            if (payload !== undefined && payload !== null) {
              if (!hdrs['Content-Type']) req = req.set('Content-Type', 'application/json');
              req = req.send(payload);
            }
            const res = await req;
            cases++;
            checkResponse(`${role} ${m} ${url.slice(0, 200)}`, res, m);
          },
        );
        await fc.assert(property, {
          seed: SEED,
          numRuns: RUNS,
          endOnFailure: true,
          includeErrorInReport: true,
        });
        await stillAnswers();
      }
    }
    const unhandled = f.t.logs.filter((l) => l.msg === 'unhandled error');
    assert.deepEqual(
      unhandled.map((l) => (l.err as { message?: string })?.message),
      [],
      'an error reached the log as unhandled',
    );
    const fromDb = f.t.logs.filter((l) => l.msg === 'database error from client input');
    assert.deepEqual(
      fromDb.map((l) => (l.err as { message?: string })?.message),
      [],
      'a database error got past the input rule (answered 4xx, but the edge should catch it)',
    );
    assert.ok(cases >= RUNS * routes.length, `${cases} cases`);
  });

  test('unknown routes and methods: a fault, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
        fc.array(fc.oneof(fc.constantFrom('v2', 'identity', 'v3', 'shares', 'action'), urlString.map(pct)), {
          maxLength: 5,
        }),
        fc.constantFrom(...roles),
        async (method, segments, role) => {
          const url = `/${segments.join('/')}`;
          let req = f.t.http()[method.toLowerCase() as 'get'](url);
          const token = tokenFor(role);
          if (token) req = req.set('X-Auth-Token', token);
          const res = await req;
          if (method === 'OPTIONS' && res.status < 400) return;
          checkResponse(`${role} ${method} ${url.slice(0, 200)}`, res, method);
        },
      ),
      { seed: SEED, numRuns: RUNS * 10, endOnFailure: true, includeErrorInReport: true },
    );
    await stillAnswers();
  });
});
