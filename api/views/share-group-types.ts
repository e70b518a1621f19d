import type { ShareGroupType } from '../../services/repos/share-group-types.ts';
import { atLeast, type Microversion } from '../middleware/microversion.ts';

/**
 * A share group type as Manila renders it (manila/api/views/share_group_types.py): id, name, the
 * ids of its share types, is_public and group specs; `is_default` from 2.46 (always false: abaca
 * sets no default share group type).
 */
export function shareGroupType(t: ShareGroupType, v: Microversion) {
  const out: Record<string, unknown> = {
    id: t.id,
    name: t.name,
    share_types: t.share_types,
    is_public: t.is_public,
    group_specs: t.group_specs,
  };
  if (atLeast(v, '2.46')) out.is_default = false;
  return out;
}
