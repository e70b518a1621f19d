import type { Share } from '../../services/repos/shares.ts';
import { atLeast, type Microversion } from '../middleware/microversion.ts';
import { iso } from './common.ts';

/** A share's one instance as Manila renders share instances (manila/api/views/share_instance.py). */
export function shareInstance(s: Share, v: Microversion) {
  const out: Record<string, unknown> = {
    id: s.id,
    share_id: s.id,
    availability_zone: s.availability_zone,
    created_at: iso(s.created_at),
    host: s.host ?? '',
    status: s.status,
    share_network_id: null,
    share_server_id: null,
  };
  if (!atLeast(v, '2.9')) {
    out.export_locations = s.export_paths;
    out.export_location = s.export_paths[0] ?? null;
  }
  if (atLeast(v, '2.10')) out.access_rules_status = s.access_rules_status;
  if (atLeast(v, '2.11')) out.replica_state = null;
  if (atLeast(v, '2.22')) out.share_type_id = s.share_type_id;
  if (atLeast(v, '2.30')) out.cast_rules_to_readonly = false;
  if (atLeast(v, '2.54')) out.progress = s.status === 'available' ? '100%' : '0%';
  if (atLeast(v, '2.71')) out.updated_at = iso(s.updated_at);
  return out;
}
