import type { AccessRule } from '../../services/repos/access-rules.ts';
import { atLeast, type Microversion } from '../middleware/microversion.ts';
import { iso } from './common.ts';

/** Before 2.28 Manila had no queued/applying/denying states: a rule was 'new' until in force. */
function state(rule: AccessRule, v: Microversion): string {
  if (atLeast(v, '2.28')) return rule.state;
  if (rule.state === 'queued_to_apply' || rule.state === 'applying') return 'new';
  if (rule.state === 'queued_to_deny' || rule.state === 'denying') return 'active';
  return rule.state;
}

/** A rule in the allow_access answer and GET /v2/share-access-rules/{id} (with share_id). */
export function accessRule(rule: AccessRule, v: Microversion) {
  return { share_id: rule.share_id, ...accessListItem(rule, v) };
}

/** A rule in a list (the access_list action and GET /v2/share-access-rules), without share_id. */
export function accessListItem(rule: AccessRule, v: Microversion) {
  return {
    id: rule.id,
    access_type: rule.access_type,
    access_to: rule.access_to,
    access_level: rule.access_level,
    state: state(rule, v),
    ...(atLeast(v, '2.21') ? { access_key: rule.access_key } : {}),
    ...(atLeast(v, '2.33') ? { created_at: iso(rule.created_at), updated_at: iso(rule.updated_at) } : {}),
    ...(atLeast(v, '2.45') ? { metadata: rule.metadata } : {}),
  };
}
