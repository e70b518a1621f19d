import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Executor } from '../../services/db.ts';
import { QuotaExceeded } from '../../services/errors.ts';
import { createQuotaService, type Deltas } from '../../services/quotas.ts';
import type { Repos } from '../../services/repos/index.ts';
import type { QuotaKey, ReservationRow, UsageRow } from '../../services/repos/quotas.ts';

/**
 * The quota engine's arithmetic against an in-memory quotas repository (Unleash's fake stores):
 * reserve checks project-wide, per-type and per-user limits together, commit turns reservations into usage,
 * rollback returns them, release frees usage.
 */

const PROJECT = 'p1';
const TYPE = 't1';
const USER = 'u1';
const keyOf = (k: QuotaKey) => `${k.project_id}/${k.user_id ?? ''}/${k.share_type_id}/${k.resource}`;
type Limits = {
  project?: Record<string, number>;
  type?: Record<string, number>;
  user?: Record<string, number>;
};

function fakeQuotasRepo(limits: Limits) {
  const usages = new Map<string, UsageRow>();
  const reservations: ReservationRow[] = [];
  const usage = (k: QuotaKey): UsageRow => {
    let u = usages.get(keyOf(k));
    if (!u) {
      u = {
        project_id: k.project_id,
        user_id: k.user_id ?? '',
        share_type_id: k.share_type_id,
        resource: k.resource,
        in_use: 0,
        reserved: 0,
      };
      usages.set(keyOf(k), u);
    }
    return u;
  };
  const repo: Repos['quotas'] = {
    async limits(_ex, projectId, shareTypeId, userId = '') {
      if (projectId !== PROJECT) return {};
      if (userId !== '') return { ...(userId === USER ? limits.user : {}) };
      return { ...(shareTypeId === '' ? limits.project : limits.type) };
    },
    async setLimit() {},
    async deleteLimits() {},
    async lockUsages(_ex, keys) {
      return keys.map((k) => ({ ...usage(k) }));
    },
    async usages(_ex, projectId, shareTypeId, userId = '') {
      return [...usages.values()].filter(
        (u) => u.project_id === projectId && u.share_type_id === shareTypeId && u.user_id === userId,
      );
    },
    async adjust(_ex, k, inUse, reserved) {
      const u = usage(k);
      u.in_use = Math.max(u.in_use + inUse, 0);
      u.reserved = Math.max(u.reserved + reserved, 0);
    },
    async addReservation(_ex, row) {
      reservations.push(row);
    },
    async takeReservations(_ex, taskId) {
      const taken = reservations.filter((r) => r.task_id === taskId);
      for (const r of taken) reservations.splice(reservations.indexOf(r), 1);
      return taken;
    },
  };
  /** in_use/reserved of a resource, project-wide, for the type and for the user. */
  const seen = (resource: string) => ({
    project: [
      usage({ project_id: PROJECT, share_type_id: '', resource }).in_use,
      usage({ project_id: PROJECT, share_type_id: '', resource }).reserved,
    ],
    type: [
      usage({ project_id: PROJECT, share_type_id: TYPE, resource }).in_use,
      usage({ project_id: PROJECT, share_type_id: TYPE, resource }).reserved,
    ],
    user: [
      usage({ project_id: PROJECT, user_id: USER, share_type_id: '', resource }).in_use,
      usage({ project_id: PROJECT, user_id: USER, share_type_id: '', resource }).reserved,
    ],
  });
  return { repo, seen };
}

const ex = {} as Executor;
const scope = (taskId: string) => ({ projectId: PROJECT, shareTypeId: TYPE, userId: USER, taskId });

type Step =
  | { reserve: Deltas; task: string; status?: 403 | 413 }
  | { commit: string }
  | { rollback: string }
  | { release: Deltas };

const cases: {
  name: string;
  limits: Limits;
  steps: Step[];
  /** The QuotaExceeded status and message of the last step, if it must fail. */
  refused?: { status: number; message: RegExp };
  /** gigabytes [in_use, reserved] after the steps, project-wide, for the type and for the user. */
  gigabytes: { project: number[]; type: number[]; user?: number[] };
}[] = [
  {
    name: 'a reservation within the defaults counts as reserved at both levels',
    limits: {},
    steps: [{ reserve: { shares: 1, gigabytes: 10 }, task: 'a' }],
    gigabytes: { project: [0, 10], type: [0, 10], user: [0, 10] },
  },
  {
    name: 'commit turns the reservation into usage',
    limits: {},
    steps: [{ reserve: { gigabytes: 10 }, task: 'a' }, { commit: 'a' }],
    gigabytes: { project: [10, 0], type: [10, 0], user: [10, 0] },
  },
  {
    name: 'a user limit is checked as well as the project one',
    limits: { project: { gigabytes: 100 }, user: { gigabytes: 7 } },
    steps: [
      { reserve: { gigabytes: 4 }, task: 'a' },
      { commit: 'a' },
      { reserve: { gigabytes: 4 }, task: 'b' },
    ],
    refused: { status: 413, message: /gigabytes \(user limit 7, 4 in use or reserved, 4 requested\)/ },
    gigabytes: { project: [4, 0], type: [4, 0], user: [4, 0] },
  },
  {
    name: 'a user limit of -1 leaves the project limit in force',
    limits: { project: { gigabytes: 5 }, user: { gigabytes: -1 } },
    steps: [{ reserve: { gigabytes: 6 }, task: 'a' }],
    refused: { status: 413, message: /project limit 5/ },
    gigabytes: { project: [0, 0], type: [0, 0], user: [0, 0] },
  },
  {
    name: 'rollback gives the reservation back',
    limits: {},
    steps: [{ reserve: { gigabytes: 10 }, task: 'a' }, { rollback: 'a' }],
    gigabytes: { project: [0, 0], type: [0, 0] },
  },
  {
    name: 'release frees usage, never below zero',
    limits: {},
    steps: [{ reserve: { gigabytes: 10 }, task: 'a' }, { commit: 'a' }, { release: { gigabytes: 25 } }],
    gigabytes: { project: [0, 0], type: [0, 0], user: [0, 0] },
  },
  {
    name: 'up to the project limit exactly is allowed',
    limits: { project: { gigabytes: 20 } },
    steps: [
      { reserve: { gigabytes: 15 }, task: 'a' },
      { reserve: { gigabytes: 5 }, task: 'b' },
    ],
    gigabytes: { project: [0, 20], type: [0, 20] },
  },
  {
    name: 'one over the project limit is refused with 413; usage and reservations are what they were',
    limits: { project: { gigabytes: 20 } },
    steps: [
      { reserve: { gigabytes: 15 }, task: 'a' },
      { commit: 'a' },
      { reserve: { gigabytes: 6 }, task: 'b' },
    ],
    refused: { status: 413, message: /gigabytes \(project limit 20, 15 in use or reserved, 6 requested\)/ },
    gigabytes: { project: [15, 0], type: [15, 0] },
  },
  {
    name: 'a per-type limit is checked as well as the project one',
    limits: { project: { gigabytes: 100 }, type: { gigabytes: 8 } },
    steps: [{ reserve: { gigabytes: 9 }, task: 'a' }],
    refused: { status: 413, message: /share type limit 8/ },
    gigabytes: { project: [0, 0], type: [0, 0] },
  },
  {
    name: 'extend asks for 403 instead of 413',
    limits: { project: { gigabytes: 5 } },
    steps: [{ reserve: { gigabytes: 6 }, task: 'a', status: 403 }],
    refused: { status: 403, message: /project limit 5/ },
    gigabytes: { project: [0, 0], type: [0, 0] },
  },
  {
    name: 'a limit of -1 is unlimited',
    limits: { project: { gigabytes: -1 } },
    steps: [{ reserve: { gigabytes: 1_000_000 }, task: 'a' }],
    gigabytes: { project: [0, 1_000_000], type: [0, 1_000_000] },
  },
  {
    name: 'zero and negative deltas reserve nothing (a shrink needs no quota)',
    limits: { project: { gigabytes: 0 } },
    steps: [{ reserve: { gigabytes: 0, shares: -1 }, task: 'a' }],
    gigabytes: { project: [0, 0], type: [0, 0] },
  },
  {
    name: 'reserved units count against the limit before they are committed',
    limits: { project: { gigabytes: 10 } },
    steps: [
      { reserve: { gigabytes: 10 }, task: 'a' },
      { reserve: { gigabytes: 1 }, task: 'b' },
    ],
    refused: { status: 413, message: /10 in use or reserved, 1 requested/ },
    gigabytes: { project: [0, 10], type: [0, 10] },
  },
];

for (const c of cases)
  test(`quotas: ${c.name}`, async () => {
    const { repo, seen } = fakeQuotasRepo(c.limits);
    const quotas = createQuotaService({ repos: { quotas: repo } });
    for (const [i, step] of c.steps.entries()) {
      const run = async () => {
        if ('reserve' in step) await quotas.reserve(ex, scope(step.task), step.reserve, step.status);
        else if ('commit' in step) await quotas.commit(ex, step.commit);
        else if ('rollback' in step) await quotas.rollback(ex, step.rollback);
        else await quotas.release(ex, { projectId: PROJECT, shareTypeId: TYPE, userId: USER }, step.release);
      };
      const refused = c.refused;
      if (refused && i === c.steps.length - 1)
        await assert.rejects(run, (err: unknown) => {
          assert.ok(err instanceof QuotaExceeded);
          assert.equal(err.status, refused.status);
          assert.match(err.message, refused.message);
          return true;
        });
      else await run();
    }
    const { user, ...rest } = seen('gigabytes');
    assert.deepEqual(c.gigabytes.user ? { ...rest, user } : rest, c.gigabytes);
  });
