import type { Config } from '../../services/config.ts';
import type { Auth } from '../../services/policy.ts';
import type { MessageRow } from '../../services/repos/messages.ts';
import { links } from './common.ts';

const iso = (d: Date) => d.toISOString().replace('Z', '');

export function message(config: Config, m: MessageRow, auth: Auth) {
  return {
    id: m.id,
    resource_type: m.resource_type,
    resource_id: m.resource_id,
    action_id: m.action_id,
    user_message: m.user_message,
    message_level: m.message_level,
    detail_id: m.detail_id,
    request_id: m.request_id,
    created_at: iso(m.created_at),
    expires_at: iso(m.expires_at),
    ...(auth.isAdmin ? { project_id: m.project_id } : {}),
    links: links(config, 'messages', m.id),
  };
}
