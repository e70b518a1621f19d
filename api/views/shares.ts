import type { Config } from '../../services/config.ts';
import { boolSpec } from '../../services/extra-specs.ts';
import type { Auth } from '../../services/policy.ts';
import type { ExportLocationRow, Share } from '../../services/repos/shares.ts';
import { ShareStatus } from '../../services/shares.ts';
import { atLeast, type Microversion } from '../middleware/microversion.ts';
import { iso, links as resourceLinks } from './common.ts';

const links = (config: Config, id: string) => resourceLinks(config, 'shares', id);

/** GET /v2/shares: the summary view. */
export function shareSummary(config: Config, s: Share) {
  return { id: s.id, name: s.name, links: links(config, s.id) };
}

/** The share object as Manila renders it (manila/api/views/shares.py), by microversion. */
export function shareDetail(config: Config, s: Share, auth: Auth, v: Microversion) {
  const flag = (spec: string) => boolSpec(s.share_type_specs, spec) ?? false;
  const status =
    s.status === ShareStatus.CREATING_FROM_SNAPSHOT && !atLeast(v, '2.54') ? ShareStatus.CREATING : s.status;
  return {
    id: s.id,
    name: s.name,
    description: s.description,
    size: s.size,
    status,
    share_proto: s.share_proto.toUpperCase(),
    availability_zone: s.availability_zone,
    created_at: iso(s.created_at),
    updated_at: iso(s.updated_at),
    project_id: s.project_id,
    user_id: s.user_id,
    snapshot_id: s.snapshot_id,
    share_network_id: null,
    metadata: s.metadata,
    share_type: s.share_type_id,
    share_type_name: s.share_type_name,
    volume_type: s.share_type_name,
    is_public: s.is_public,
    links: links(config, s.id),
    ...(auth.isAdmin ? { host: s.host ?? '', share_server_id: null } : {}),
    ...(atLeast(v, '2.2') ? { snapshot_support: flag('snapshot_support') } : {}),
    ...(atLeast(v, '2.5') ? { task_state: null } : {}),
    ...(atLeast(v, '2.10')
      ? {
          // 'syncing' was called 'out_of_sync' before 2.28.
          access_rules_status:
            s.access_rules_status === 'syncing' && !atLeast(v, '2.28')
              ? 'out_of_sync'
              : s.access_rules_status,
        }
      : {}),
    ...(atLeast(v, '2.11') ? { replication_type: null, has_replicas: false } : {}),
    ...(atLeast(v, '2.24')
      ? { create_share_from_snapshot_support: flag('create_share_from_snapshot_support') }
      : {}),
    ...(atLeast(v, '2.27') ? { revert_to_snapshot_support: flag('revert_to_snapshot_support') } : {}),
    ...(atLeast(v, '2.31') ? { share_group_id: null, source_share_group_snapshot_member_id: null } : {}),
    ...(atLeast(v, '2.32') ? { mount_snapshot_support: flag('mount_snapshot_support') } : {}),
    ...(atLeast(v, '2.54') ? { progress: s.status === ShareStatus.AVAILABLE ? '100%' : '0%' } : {}),
    ...(atLeast(v, '2.69') ? { is_soft_deleted: false, scheduled_to_be_deleted_at: null } : {}),
  };
}

export function exportLocation(e: ExportLocationRow, auth: Auth) {
  return {
    id: e.id,
    path: e.path,
    preferred: e.preferred,
    ...(auth.isAdmin ? { share_instance_id: e.share_id, is_admin_only: e.is_admin_only } : {}),
  };
}
