import { type Auth, requireAdmin } from './policy.ts';
import type { ExportLocationRow, Share } from './repos/shares.ts';
import type { ShareListQuery, ShareService } from './shares.ts';

/**
 * Share instances (Manila's admin view of where a share lives). An abaca share has exactly one
 * instance, the share itself: its id is the share's id, as export locations' share_instance_id
 * already says. Every call is admin-only (share_instance:* policies); members get 403.
 */
export function createShareInstanceService({ shares }: { shares: ShareService }) {
  return {
    async listForShare(auth: Auth, shareId: string): Promise<Share[]> {
      requireAdmin(auth, 'share:list_share_instances');
      return [await shares.get(auth, shareId)];
    },

    /** Every project's instances, filtered as the share list filters (export location id/path). */
    async list(auth: Auth, q: ShareListQuery): Promise<Share[]> {
      requireAdmin(auth, 'share_instance:index');
      const page = await shares.list(auth, { ...q, allTenants: true });
      return (await page.load(page.items.map((i) => i.id))).map((x) => x.share);
    },

    async get(auth: Auth, id: string): Promise<Share> {
      requireAdmin(auth, 'share_instance:show');
      return shares.get(auth, id);
    },

    async exportLocations(auth: Auth, id: string): Promise<ExportLocationRow[]> {
      requireAdmin(auth, 'share_instance_export_location:index');
      return shares.exportLocations(auth, id);
    },

    async resetStatus(auth: Auth, id: string, status: string): Promise<void> {
      requireAdmin(auth, 'share_instance:reset_status');
      await shares.resetStatus(auth, id, status);
    },

    async forceDelete(auth: Auth, id: string): Promise<void> {
      requireAdmin(auth, 'share_instance:force_delete');
      await shares.forceDelete(auth, id);
    },
  };
}

export type ShareInstanceService = ReturnType<typeof createShareInstanceService>;
