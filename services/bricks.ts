import type { Backend, BackendBricks, BrickJob, BrickStatus } from '../backends/types.ts';
import { viaBackend } from './backend-calls.ts';
import { InvalidInput, NotFound, NotSupported } from './errors.ts';
import { type Auth, requireAdmin } from './policy.ts';
import type { ConfiguredBackend } from './scheduler.ts';

export interface BrickView extends BrickStatus {
  backend: string;
}

/**
 * Bricks for operators (GlusterFS's add-brick, replace-brick, remove-brick): list them with the
 * progress of long work, add one, replace a failed one by a new empty one, drain and remove one.
 * Admin only. The backend does the work and keeps its registry (BrickStore); these calls are
 * hand-offs answered in the request, the long part followed through `list`.
 */
export function createBrickService(deps: { backends: ConfiguredBackend[] }) {
  const withBricks = (): Array<Backend & { bricks: BackendBricks }> =>
    deps.backends
      .map((b) => b.backend)
      .filter((b): b is Backend & { bricks: BackendBricks } => b.bricks !== undefined);

  /** The backend named, or the only one with bricks. */
  function backendNamed(name: string | undefined): Backend & { bricks: BackendBricks } {
    const all = withBricks();
    if (all.length === 0)
      throw new NotSupported('No configured backend is made of bricks (only replicated backends are).');
    if (name !== undefined) {
      const found = all.find((b) => b.name === name);
      if (!found)
        throw new NotFound(
          `Backend ${name} could not be found among the backends with bricks (${all.map((b) => b.name).join(', ')}).`,
        );
      return found;
    }
    if (all.length > 1)
      throw new InvalidInput(
        `Several backends have bricks (${all.map((b) => b.name).join(', ')}): name one with "backend".`,
      );
    return all[0]!;
  }

  async function listOf(b: Backend & { bricks: BackendBricks }): Promise<BrickView[]> {
    return (await viaBackend(() => b.bricks.list())).map((x) => ({ ...x, backend: b.name }));
  }

  /** The backend holding brick `ref` (id or address); NotFound when none does. */
  async function holderOf(ref: string, backend?: string): Promise<Backend & { bricks: BackendBricks }> {
    const candidates = backend === undefined ? withBricks() : [backendNamed(backend)];
    if (candidates.length === 0) backendNamed(undefined);
    for (const b of candidates)
      if ((await listOf(b)).some((x) => x.id === ref || x.address === ref)) return b;
    throw new NotFound(`Brick ${ref} could not be found.`);
  }

  return {
    async list(auth: Auth, backend?: string): Promise<BrickView[]> {
      requireAdmin(auth, 'brick:list');
      const backends = backend === undefined ? withBricks() : [backendNamed(backend)];
      if (backends.length === 0) backendNamed(undefined);
      return (await Promise.all(backends.map(listOf))).flat();
    },

    async get(auth: Auth, ref: string): Promise<BrickView> {
      requireAdmin(auth, 'brick:get');
      for (const b of withBricks()) {
        const found = (await listOf(b)).find((x) => x.id === ref || x.address === ref);
        if (found) return found;
      }
      throw new NotFound(`Brick ${ref} could not be found.`);
    },

    async add(auth: Auth, address: string, backend?: string): Promise<BrickView> {
      requireAdmin(auth, 'brick:add');
      const b = backendNamed(backend);
      return { ...(await viaBackend(() => b.bricks.add(address))), backend: b.name };
    },

    async replace(auth: Auth, ref: string, newAddress: string): Promise<BrickJob> {
      requireAdmin(auth, 'brick:replace');
      const b = await holderOf(ref);
      return viaBackend(() => b.bricks.replace(ref, newAddress));
    },

    async remove(auth: Auth, ref: string): Promise<BrickJob> {
      requireAdmin(auth, 'brick:remove');
      const b = await holderOf(ref);
      return viaBackend(() => b.bricks.remove(ref));
    },
  };
}

export type BrickService = ReturnType<typeof createBrickService>;
