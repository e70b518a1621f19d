import { BackendError } from '../backends/errors.ts';
import type {
  Backend,
  BackendCapabilities,
  ShareProtocol,
  ShareRef,
  SnapshotRef,
} from '../backends/types.ts';
import type { ShareRow } from './repos/shares.ts';
import type { SnapshotRow } from './repos/snapshots.ts';
import type { ConfiguredBackend } from './scheduler.ts';

/** The backend part of Manila's host string `server@backend#pool`. */
export const backendNameOf = (host: string): string | undefined => /@([^#]+)#/.exec(host)?.[1];

/** Raised when no backend can take a share; the share goes to error with Manila's message. */
export class NoValidHost extends Error {}

/**
 * What the task handlers share: finding the backend a share lives on (from its Manila host string
 * `server@backend#pool`), the references backends are called with, and the text a user message
 * gives for a failure.
 */
export function backendCalls(backends: ConfiguredBackend[]) {
  function backendFor(host: string): Backend {
    const name = backendNameOf(host);
    const found = backends.find((b) => b.backend.name === name);
    if (!found)
      throw new BackendError(
        'Unavailable',
        `Backend ${name} of host ${host} is not configured on this server.`,
      );
    return found.backend;
  }
  return {
    backendFor,
    /** The backend's capabilities, or null when the host's backend is not configured here. */
    async capabilitiesFor(host: string | null): Promise<BackendCapabilities | null> {
      if (!host) return null;
      try {
        return (await backendFor(host).stats()).capabilities;
      } catch {
        return null;
      }
    },
  };
}

export type BackendCalls = ReturnType<typeof backendCalls>;

export const shareRef = (s: ShareRow): ShareRef => ({
  id: s.id,
  size: s.size,
  proto: s.share_proto as ShareProtocol,
  pool: (s.host ?? '').split('#')[1] ?? '',
});

export const snapshotRef = (s: SnapshotRow): SnapshotRef => ({ id: s.id, shareId: s.share_id, size: s.size });

/** What a user message says about a failed task (details of unexpected errors stay in the log). */
export function failureText(err: unknown): string {
  if (err instanceof NoValidHost) return err.message;
  if (err instanceof BackendError) return `The storage backend failed: ${err.message}`;
  return 'An unexpected error stopped the operation; an operator can find the details in the server log.';
}

export const errorText = (err: unknown) => String((err as Error)?.message ?? err);
