import type { Executor } from '../db.ts';

export interface MessageRow {
  id: string;
  project_id: string;
  resource_type: string;
  resource_id: string | null;
  action_id: string;
  detail_id: string;
  message_level: string;
  user_message: string;
  request_id: string | null;
  created_at: Date;
  expires_at: Date;
}

export type MessageFilter = Partial<
  Pick<
    MessageRow,
    'resource_id' | 'resource_type' | 'action_id' | 'detail_id' | 'message_level' | 'request_id'
  >
>;

/** Manila's sort keys for messages. */
export const MESSAGE_SORT_KEYS = [
  'id',
  'project_id',
  'request_id',
  'resource_type',
  'action_id',
  'detail_id',
  'resource_id',
  'message_level',
  'expires_at',
  'created_at',
] as const;

/** How a message list is ordered and paged, and the created_at window (2.52). */
export interface MessagePage {
  limit?: number | undefined;
  offset?: number | undefined;
  sortKey?: (typeof MESSAGE_SORT_KEYS)[number] | undefined;
  sortDir?: 'asc' | 'desc' | undefined;
  createdSince?: Date | undefined;
  createdBefore?: Date | undefined;
}

export const messagesRepo = {
  async insert(ex: Executor, row: Omit<MessageRow, 'created_at'>): Promise<void> {
    await ex('messages').insert(row);
  },
  async get(ex: Executor, id: string): Promise<MessageRow | undefined> {
    return ex('messages').where({ id }).first();
  },
  /** Unexpired messages, newest first; projectId null → every project. */
  async list(
    ex: Executor,
    projectId: string | null,
    filter: MessageFilter,
    page: MessagePage,
  ): Promise<MessageRow[]> {
    const q = ex('messages')
      .where(Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined)))
      .where('expires_at', '>', new Date())
      .orderBy([
        { column: page.sortKey ?? 'created_at', order: page.sortDir ?? 'desc' },
        { column: 'id', order: page.sortDir ?? 'asc' },
      ]);
    if (page.createdSince) q.where('created_at', '>=', page.createdSince);
    if (page.createdBefore) q.where('created_at', '<=', page.createdBefore);
    if (projectId !== null) q.where({ project_id: projectId });
    if (page.limit !== undefined) q.limit(page.limit);
    if (page.offset !== undefined) q.offset(page.offset);
    return q;
  },
  async remove(ex: Executor, id: string): Promise<void> {
    await ex('messages').where({ id }).delete();
  },
};
