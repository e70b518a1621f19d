/**
 * The share API as the controller uses it, behind an interface (like Manila CSI's
 * manilaclient.Interface), and a factory that builds one per set of credentials. The real one is
 * the abaca REST client (cli/client); sessions are kept per credentials fingerprint so a token is
 * reused across calls until it nears expiry.
 */
import { fingerprint, Session, ShareClient } from '../cli/client/index.ts';
import type { SecretCredentials } from './secrets.ts';

export type ShareApi = Pick<
  ShareClient,
  | 'listShares'
  | 'getShare'
  | 'createShare'
  | 'deleteShare'
  | 'extendShare'
  | 'listExportLocations'
  | 'listSnapshots'
  | 'getSnapshot'
  | 'createSnapshot'
  | 'deleteSnapshot'
  | 'listAccessRules'
  | 'getAccessRule'
  | 'allowAccess'
  | 'denyAccess'
  | 'listAvailabilityZones'
  | 'listPools'
  | 'getLimits'
  | 'latestUserMessage'
>;

export interface ShareApiFactory {
  forCredentials(c: SecretCredentials): ShareApi;
}

/** Sessions kept at most; the oldest is dropped first. */
const MAX_SESSIONS = 64;

export function restShareApiFactory(opts: { timeoutMs?: number } = {}): ShareApiFactory {
  const sessions = new Map<string, ShareClient>();
  return {
    forCredentials(c) {
      const key = `${fingerprint(c.credentials)}/${c.region ?? ''}`;
      let client = sessions.get(key);
      if (!client) {
        client = new ShareClient(
          new Session({ credentials: c.credentials, region: c.region, timeoutMs: opts.timeoutMs ?? 30_000 }),
        );
        sessions.set(key, client);
        if (sessions.size > MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
      }
      return client;
    },
  };
}
