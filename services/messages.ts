import { randomUUID } from 'node:crypto';
import type { Db, Executor } from './db.ts';
import { NotFound } from './errors.ts';
import { isUuid } from './ids.ts';
import { type Auth, requireMember, requireReader } from './policy.ts';
import type { Repos } from './repos/index.ts';
import type { MessageFilter, MessagePage, MessageRow } from './repos/messages.ts';

/**
 * Manila's message action ids (manila/message/message_field.py). Detail ids 001 and 002 are
 * Manila's; the others are abaca's own, each with its own text in the message.
 */
export const MessageAction = {
  ALLOCATE_HOST: '001',
  CREATE: '002',
  DELETE_ACCESS_RULES: '003',
  REVERT_TO_SNAPSHOT: '006',
  DELETE: '007',
  EXTEND: '008',
  SHRINK: '009',
  UPDATE_ACCESS_RULES: '010',
} as const;

export const MessageDetail = {
  UNKNOWN_ERROR: '001',
  NO_VALID_HOST: '002',
  DRIVER_FAILED: '103',
  DRIVER_REFUSED_SHRINK: '104',
} as const;

export type MessageActionId = (typeof MessageAction)[keyof typeof MessageAction];
export type MessageDetailId = (typeof MessageDetail)[keyof typeof MessageDetail];

const MESSAGE_TTL_MS = 30 * 24 * 3600 * 1000;

export interface UserMessage {
  projectId: string;
  resourceType: 'SHARE' | 'SHARE_SNAPSHOT' | 'SHARE_ACCESS' | 'SHARE_GROUP' | 'SHARE_GROUP_SNAPSHOT';
  resourceId: string;
  action: MessageActionId;
  detail: MessageDetailId;
  text: string;
  requestId?: string | null;
}

/** Records a user message (GET /v2/messages) telling the owner why something failed. */
export async function recordMessage(
  messages: Pick<Repos['messages'], 'insert'>,
  ex: Executor,
  m: UserMessage,
): Promise<void> {
  await messages.insert(ex, {
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

/** GET/DELETE /v2/messages: a project's users read and dismiss their messages; admins see all. */
export function createMessageService({ db, repos }: { db: Db; repos: Pick<Repos, 'messages'> }) {
  async function mustGet(auth: Auth, id: string): Promise<MessageRow> {
    const row = isUuid(id) ? await repos.messages.get(db, id) : undefined;
    if (!row || (!auth.isAdmin && row.project_id !== auth.projectId))
      throw new NotFound(`Message ${id} could not be found.`);
    return row;
  }
  return {
    async list(auth: Auth, filter: MessageFilter, page: MessagePage) {
      requireReader(auth, 'message:get_all');
      return repos.messages.list(db, auth.isAdmin ? null : (auth.projectId ?? ''), filter, page);
    },
    async get(auth: Auth, id: string): Promise<MessageRow> {
      requireReader(auth, 'message:get');
      return mustGet(auth, id);
    },
    async delete(auth: Auth, id: string): Promise<void> {
      requireMember(auth, 'message:delete');
      await mustGet(auth, id);
      await repos.messages.remove(db, id);
    },
  };
}

export type MessageService = ReturnType<typeof createMessageService>;
