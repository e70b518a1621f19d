import type { BrickJob } from '../../backends/types.ts';
import type { BrickView } from '../../services/bricks.ts';

export function brickJobView(j: BrickJob) {
  return {
    kind: j.kind,
    brick_id: j.brick.id,
    address: j.brick.address,
    new_brick_id: j.target?.id ?? null,
    new_address: j.target?.address ?? null,
    state: j.state,
    shares: j.shares,
    shares_moved: j.moved,
    pending_entries: j.pending,
    current_share: j.current,
    error: j.error,
    started_at: j.startedAt,
    finished_at: j.finishedAt,
  };
}

export function brickView(b: BrickView) {
  return {
    id: b.id,
    address: b.address,
    backend: b.backend,
    host: b.host,
    zone: b.zone,
    up: b.up,
    state: b.state,
    shares: b.shares,
    last_error: b.lastError,
    job: b.job ? brickJobView(b.job) : null,
  };
}
