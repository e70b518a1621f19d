/**
 * Waiting for asynchronous Manila operations: poll with exponential backoff until the resource
 * reaches the wanted state, lands in an error status (any share status containing `error`, so an
 * `extending_error` share does not hang as it does with OSC), is gone, or time runs out. Nothing
 * here prints; `onPoll` lets a caller show progress.
 */
import { isNotFound, type ShareClient } from './share-client.ts';
import type { AccessRule, Share, Snapshot } from './types.ts';

export interface PollOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** First pause between polls (the first poll is immediate); default 250 ms. */
  initialDelayMs?: number;
  /** Longest pause; default 5 s (what OSC uses throughout). */
  maxDelayMs?: number;
  /** Growth of the pause per poll; default 1.6. */
  factor?: number;
  /** Called after every poll with what it saw (undefined: the resource is gone). */
  onPoll?: (seen: { status: string | null; attempt: number; elapsedMs: number }) => void;
  /** For tests: how to wait. */
  sleep?: (ms: number) => Promise<void>;
}

export type Verdict = 'done' | 'failed' | 'pending';

export type WaitOutcome<T> =
  | { ok: true; value: T | null }
  | { ok: false; reason: 'error_status'; value: T; status: string; userMessage: string | null }
  | { ok: false; reason: 'timeout'; value: T | null; status: string | null; elapsedMs: number };

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `fetch` (null: the resource is gone) until `judge` says done or failed, or the timeout.
 * The returned outcome keeps the last value seen.
 */
export async function poll<T>(
  fetch: () => Promise<T | null>,
  judge: (value: T | null) => Verdict,
  statusOf: (value: T | null) => string | null,
  opts: PollOptions,
): Promise<{ verdict: Verdict; value: T | null; elapsedMs: number }> {
  const started = Date.now();
  const sleep = opts.sleep ?? defaultSleep;
  let delay = opts.initialDelayMs ?? 250;
  const maxDelay = opts.maxDelayMs ?? 5000;
  const factor = opts.factor ?? 1.6;
  for (let attempt = 1; ; attempt++) {
    const value = await fetch();
    const verdict = judge(value);
    const elapsedMs = Date.now() - started;
    opts.onPoll?.({ status: statusOf(value), attempt, elapsedMs });
    if (verdict !== 'pending') return { verdict, value, elapsedMs };
    const left = opts.timeoutMs - elapsedMs;
    if (left <= 0) return { verdict: 'pending', value, elapsedMs };
    await sleep(Math.min(delay, left));
    delay = Math.min(maxDelay, delay * factor);
  }
}

async function orGone<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** Every share status with `error` in it is final: error, extending_error, error_deleting, … */
export function isShareErrorStatus(status: string): boolean {
  return status.includes('error');
}

async function finish<T extends { id: string }>(
  client: ShareClient,
  r: { verdict: Verdict; value: T | null; elapsedMs: number },
  statusOf: (v: T) => string,
): Promise<WaitOutcome<T>> {
  if (r.verdict === 'done') return { ok: true, value: r.value };
  if (r.verdict === 'failed' && r.value) {
    const message = await client.latestUserMessage(r.value.id).catch(() => null);
    return {
      ok: false,
      reason: 'error_status',
      value: r.value,
      status: statusOf(r.value),
      userMessage: message?.user_message ?? null,
    };
  }
  return {
    ok: false,
    reason: 'timeout',
    value: r.value,
    status: r.value ? statusOf(r.value) : null,
    elapsedMs: r.elapsedMs,
  };
}

/**
 * Waits for a share to be `available` (and, after a resize, to have `size`). A share that is
 * `available` with another size after a resize was accepted did not change: the operation ended
 * without success (the server flips the status before it answers 202), so that is a failure too.
 */
export async function waitForShare(
  client: ShareClient,
  id: string,
  opts: PollOptions & { size?: number },
): Promise<WaitOutcome<Share>> {
  const r = await poll<Share>(
    () => client.getShare(id),
    (s) => {
      if (!s) return 'failed';
      if (isShareErrorStatus(s.status)) return 'failed';
      if (s.status === 'available')
        return opts.size === undefined || s.size === opts.size ? 'done' : 'failed';
      return 'pending';
    },
    (s) => s?.status ?? null,
    opts,
  );
  return finish(client, r, (s) => s.status);
}

/** Waits until GET of a share answers 404; `error_deleting` (or any error status) is a failure. */
export async function waitForShareDeleted(
  client: ShareClient,
  id: string,
  opts: PollOptions,
): Promise<WaitOutcome<Share>> {
  const r = await poll<Share>(
    () => orGone(client.getShare(id)),
    (s) => (!s ? 'done' : isShareErrorStatus(s.status) ? 'failed' : 'pending'),
    (s) => s?.status ?? null,
    opts,
  );
  return finish(client, r, (s) => s.status);
}

export async function waitForSnapshot(
  client: ShareClient,
  id: string,
  opts: PollOptions,
): Promise<WaitOutcome<Snapshot>> {
  const r = await poll<Snapshot>(
    () => client.getSnapshot(id),
    (s) =>
      !s ? 'failed' : s.status.includes('error') ? 'failed' : s.status === 'available' ? 'done' : 'pending',
    (s) => s?.status ?? null,
    opts,
  );
  return finish(client, r, (s) => s.status);
}

export async function waitForSnapshotDeleted(
  client: ShareClient,
  id: string,
  opts: PollOptions,
): Promise<WaitOutcome<Snapshot>> {
  const r = await poll<Snapshot>(
    () => orGone(client.getSnapshot(id)),
    (s) => (!s ? 'done' : s.status.includes('error') ? 'failed' : 'pending'),
    (s) => s?.status ?? null,
    opts,
  );
  return finish(client, r, (s) => s.status);
}

export async function waitForAccessRule(
  client: ShareClient,
  id: string,
  opts: PollOptions,
): Promise<WaitOutcome<AccessRule>> {
  const r = await poll<AccessRule>(
    () => client.getAccessRule(id),
    (a) => (!a ? 'failed' : a.state === 'error' ? 'failed' : a.state === 'active' ? 'done' : 'pending'),
    (a) => a?.state ?? null,
    opts,
  );
  return finish(client, r, (a) => a.state);
}

export async function waitForAccessRuleDeleted(
  client: ShareClient,
  id: string,
  opts: PollOptions,
): Promise<WaitOutcome<AccessRule>> {
  const r = await poll<AccessRule>(
    () => orGone(client.getAccessRule(id)),
    (a) => (!a ? 'done' : a.state === 'error' ? 'failed' : 'pending'),
    (a) => a?.state ?? null,
    opts,
  );
  return finish(client, r, (a) => a.state);
}
