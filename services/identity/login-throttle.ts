/**
 * Throttling of password and application-credential logins, per account and per source address
 * (Keystone's lockout_failure_attempts / lockout_duration, but answering 429 with Retry-After).
 *
 * Every failed secret — a wrong password, an unknown user name, an unknown credential — counts
 * against the account it named (the user's id when it exists, else the name as given, so unknown
 * names behave exactly like known ones) and against the client's address. From the `maxFailures`th
 * failure on, the key is locked for a window that doubles with each further failure (from
 * `lockoutSeconds` up to `lockoutMaxSeconds`); while it is locked every attempt answers 429 before
 * any secret is checked. A success clears the account's count (not the address's: one good account
 * must not reset a guesser's address); an admin clears an account by updating the user. The counts
 * live in the database, so a restart forgets nothing and every API process sees the same numbers.
 */
import type { Db } from '../db.ts';
import { TooManyRequests } from '../errors.ts';
import { loginFailuresRepo } from '../repos/login-failures.ts';

export interface LoginThrottleSettings {
  /** Failures of one account before it is locked (0: never). */
  maxFailures: number;
  /** Failures from one address before it is locked (0: never). */
  maxFailuresPerAddress: number;
  lockoutSeconds: number;
  lockoutMaxSeconds: number;
}

/** The keys one login attempt counts against. */
export interface LoginKeys {
  account: string;
  address: string | undefined;
}

const DAY_MS = 24 * 3600 * 1000;

export function createLoginThrottle(db: Db, s: LoginThrottleSettings) {
  const limitOf = (key: string): number =>
    key.startsWith('addr:') ? s.maxFailuresPerAddress : s.maxFailures;
  const keysOf = (k: LoginKeys): string[] =>
    [k.account, k.address === undefined ? undefined : `addr:${k.address}`].filter(
      (x): x is string => x !== undefined && limitOf(x) > 0,
    );

  /** Counts a failed secret; locks the keys that reached their limit. */
  async function failed(k: LoginKeys): Promise<void> {
    const now = new Date();
    for (const key of keysOf(k)) {
      const n = await loginFailuresRepo.add(db, key, now);
      const limit = limitOf(key);
      if (n < limit) continue;
      const seconds = Math.min(s.lockoutMaxSeconds, s.lockoutSeconds * 2 ** Math.min(n - limit, 30));
      await loginFailuresRepo.lock(db, key, new Date(now.getTime() + seconds * 1000));
    }
    // Counts older than a day are forgotten now and then (one failure in a hundred sweeps).
    if (Math.random() < 0.01) await loginFailuresRepo.purgeBefore(db, new Date(now.getTime() - DAY_MS));
  }

  return {
    /**
     * Before a secret is checked: throws TooManyRequests while the account or the address is
     * locked; otherwise answers what to do once the secret is known (`done(ok)`).
     */
    async begin(k: LoginKeys): Promise<{ done(ok: boolean): Promise<void> }> {
      const keys = keysOf(k);
      const rows = keys.length === 0 ? [] : await loginFailuresRepo.get(db, keys);
      const now = Date.now();
      const until = Math.max(0, ...rows.map((r) => r.locked_until?.getTime() ?? 0));
      if (until > now) {
        const wait = Math.ceil((until - now) / 1000);
        throw new TooManyRequests(
          `Too many failed logins for this account or from this address; try again in ${wait} seconds.`,
          wait,
        );
      }
      // A good secret starts the account again from zero: a delete only when there is a count.
      const counted = rows.some((r) => r.key === k.account);
      return {
        done: async (ok) => {
          if (!ok) await failed(k);
          else if (counted) await loginFailuresRepo.clear(db, [k.account]);
        },
      };
    },
  };
}

export const userKey = (id: string): string => `user:${id}`;
export const appCredentialKey = (id: string): string => `app-credential:${id}`;

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
