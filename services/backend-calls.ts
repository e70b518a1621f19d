import { BackendError } from '../backends/errors.ts';
import type {
  Backend,
  BackendCapabilities,
  ShareProtocol,
  ShareRef,
  SnapshotRef,
} from '../backends/types.ts';
import { Conflict, InvalidInput, NotFound, NotSupported, ServiceUnavailable } from './errors.ts';
import type { ShareRow } from './repos/shares.ts';
import type { SnapshotRow } from './repos/snapshots.ts';
import type { ConfiguredBackend } from './scheduler.ts';

/** Manila's host string `server@backend#pool`, kept on a share once it is placed. */
export interface Host {
  /** The server that scheduled the share (any server with the backend may act on it). */
  server: string;
  /** The configured backend's name. */
  backend: string;
  /** A pool of that backend (a name from its stats().pools). */
  pool: string;
}

/** The one reader of host strings; undefined for a share not placed yet or a malformed host. */
export function parseHost(host: string | null): Host | undefined {
  const m = host === null ? null : /^([^@]*)@([^#]+)#(.*)$/.exec(host);
  return m ? { server: m[1] as string, backend: m[2] as string, pool: m[3] as string } : undefined;
}

export const formatHost = (h: Host): string => `${h.server}@${h.backend}#${h.pool}`;

/** Raised when no backend can take a share; the share goes to error with Manila's message. */
export class NoValidHost extends Error {}

/**
 * What the task handlers share: finding the backend a share lives on (from its Manila host string
 * `server@backend#pool`), the references backends are called with, and the text a user message
 * gives for a failure.
 */
export function backendCalls(backends: ConfiguredBackend[]) {
  function backendFor(host: string | null): Backend {
    const name = parseHost(host)?.backend;
    const found = name === undefined ? undefined : backends.find((b) => b.backend.name === name);
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
  shareProto: s.share_proto as ShareProtocol,
  pool: parseHost(s.host)?.pool ?? '',
  projectId: s.project_id,
});

export const snapshotRef = (s: SnapshotRow): SnapshotRef => ({ id: s.id, shareId: s.share_id, size: s.size });

/** What a user message says about a failed task (details of unexpected errors stay in the log). */
export function failureText(err: unknown): string {
  if (err instanceof NoValidHost) return err.message;
  if (err instanceof BackendError) return `The storage backend failed: ${err.message}`;
  return 'An unexpected error stopped the operation; an operator can find the details in the server log.';
}

export const errorText = (err: unknown) => String((err as Error)?.message ?? err);

/**
 * Runs a backend call answered within the request (heal, bricks), with a backend's refusal turned
 * into the API's error: NotFound 404, InvalidRequest 400, Conflict 409, NotSupported 501, anything
 * else 503.
 */
export async function viaBackend<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof BackendError)) throw err;
    switch (err.code) {
      case 'NotFound':
        throw new NotFound(err.message);
      case 'InvalidRequest':
        throw new InvalidInput(err.message);
      case 'Conflict':
        throw new Conflict(err.message);
      case 'NotSupported':
        throw new NotSupported(err.message);
      default:
        throw new ServiceUnavailable(`The storage backend could not answer: ${err.message}`);
    }
  }
}
