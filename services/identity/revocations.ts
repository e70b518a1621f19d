import type { Db, Executor, Trx } from '../db.ts';
import { revocationEventsRepo } from '../repos/revocation-events.ts';

/** What a token carries that revocation events can match. */
export interface RevocableToken {
  auditId: string;
  userId: string;
  projectId: string | null;
  /** Issue time in milliseconds. */
  issuedAt: number;
}

/** A user-wide (projectId null) or user-on-project revocation. */
interface UserEvent {
  projectId: string | null;
  issuedBefore: number;
}

/**
 * Revocation events (Keystone's model): by audit id for one token, or by user (and project) for
 * every token issued before an instant. Events live in the database so they survive restarts and
 * reach every server; each server keeps them in memory and reloads them at most every `ttlMs`, so
 * validating a token costs a map lookup, not a query. A change made through this server is visible
 * here at once; one made through another server within `ttlMs`.
 */
export class RevocationList {
  private byAuditId = new Set<string>();
  private byUser = new Map<string, UserEvent[]>();
  private byProject = new Map<string, number>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly ttlMs: number,
    private readonly tokenLifetimeMs: number,
  ) {}

  async isRevoked(t: RevocableToken): Promise<boolean> {
    if (Date.now() - this.loadedAt >= this.ttlMs) await this.refresh();
    if (this.byAuditId.has(t.auditId)) return true;
    for (const e of this.byUser.get(t.userId) ?? []) {
      if ((e.projectId === null || e.projectId === t.projectId) && t.issuedAt <= e.issuedBefore) return true;
    }
    const projectCut = t.projectId ? this.byProject.get(t.projectId) : undefined;
    return projectCut !== undefined && t.issuedAt <= projectCut;
  }

  async revokeToken(ex: Executor, auditId: string, expiresAt: Date): Promise<void> {
    await revocationEventsRepo.insert(ex, {
      audit_id: auditId,
      user_id: null,
      project_id: null,
      issued_before: new Date(),
      expires_at: expiresAt,
    });
    this.invalidateAfter(ex);
  }

  /** Revokes every token of the user (on one project, if given) issued up to now. */
  async revokeUser(ex: Executor, userId: string, projectId: string | null = null): Promise<void> {
    await this.revokeMatching(ex, userId, projectId);
  }

  /** Revokes every token scoped to the project, whoever holds it (project disabled or deleted). */
  async revokeProject(ex: Executor, projectId: string): Promise<void> {
    await this.revokeMatching(ex, null, projectId);
  }

  private async revokeMatching(ex: Executor, userId: string | null, projectId: string | null): Promise<void> {
    const now = Date.now();
    await revocationEventsRepo.insert(ex, {
      audit_id: null,
      user_id: userId,
      project_id: projectId,
      issued_before: new Date(now),
      expires_at: new Date(now + this.tokenLifetimeMs),
    });
    this.invalidateAfter(ex);
  }

  /** Reloads once the event is visible: now, or when the caller's transaction commits. */
  private invalidateAfter(ex: Executor): void {
    this.invalidate();
    if ((ex as Trx).isTransaction)
      (ex as Trx).executionPromise.then(
        () => this.invalidate(),
        () => {},
      );
  }

  /** Forces the next check to reload (called after this server writes an event). */
  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  private refresh(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const started = Date.now();
        const rows = await revocationEventsRepo.listActive(this.db, new Date(started));
        const byAuditId = new Set<string>();
        const byUser = new Map<string, UserEvent[]>();
        const byProject = new Map<string, number>();
        for (const r of rows) {
          if (r.audit_id) byAuditId.add(r.audit_id);
          else if (!r.user_id && r.project_id) {
            byProject.set(
              r.project_id,
              Math.max(byProject.get(r.project_id) ?? 0, r.issued_before.getTime()),
            );
          } else if (r.user_id) {
            const list = byUser.get(r.user_id) ?? [];
            list.push({ projectId: r.project_id, issuedBefore: r.issued_before.getTime() });
            byUser.set(r.user_id, list);
          }
        }
        this.byAuditId = byAuditId;
        this.byUser = byUser;
        this.byProject = byProject;
        this.loadedAt = started;
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  async purgeExpired(): Promise<void> {
    await revocationEventsRepo.purgeExpired(this.db, new Date());
  }
}
