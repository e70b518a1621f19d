import { randomUUID } from 'node:crypto';
import type { Executor } from './db.ts';

/** Manila's message actions and details (manila/message/message_field.py), the ones we emit. */
export const MessageAction = {
  ALLOCATE_HOST: '001',
  CREATE: '002',
  DELETE: '003',
  EXTEND: '004',
  SHRINK: '005',
} as const;

export const MessageDetail = {
  UNKNOWN_ERROR: '001',
  NO_VALID_HOST: '002',
  DRIVER_FAILED: '003',
  TIMED_OUT: '004',
} as const;

const MESSAGE_TTL_MS = 30 * 24 * 3600 * 1000;

export interface UserMessage {
  projectId: string;
  resourceType: 'SHARE' | 'SHARE_SNAPSHOT' | 'SHARE_ACCESS';
  resourceId: string;
  action: (typeof MessageAction)[keyof typeof MessageAction];
  detail: (typeof MessageDetail)[keyof typeof MessageDetail];
  text: string;
  requestId?: string | null;
}

/** Records a user message (GET /v2/messages) telling the owner why something failed. */
export async function recordMessage(ex: Executor, m: UserMessage): Promise<void> {
  await ex('messages').insert({
    id: randomUUID(),
    project_id: m.projectId,
    resource_type: m.resourceType,
    resource_id: m.resourceId,
    action_id: m.action,
    detail_id: m.detail,
    message_level: 'ERROR',
    user_message: m.text,
    request_id: m.requestId ?? null,
    expires_at: new Date(Date.now() + MESSAGE_TTL_MS),
  });
}
