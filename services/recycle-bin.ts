import { Forbidden } from './errors.ts';

/**
 * The recycle bin (Manila's soft delete, microversion 2.69). A soft-deleted share keeps its
 * storage and its quota; it leaves the share lists (GET /v2/shares?is_soft_deleted=true lists the
 * bin), can be restored, deleted for good, or is deleted once its retention has passed.
 */

/** Manila's soft_deleted_share_retention_time default: a week. */
export const DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600;

/**
 * Manila refuses changes to a share in the recycle bin with 403 (its controllers' "… since it has
 * been soft deleted"): restore it first.
 */
export function refuseInRecycleBin(share: { id: string; is_soft_deleted: boolean }, change: string): void {
  if (share.is_soft_deleted)
    throw new Forbidden(
      `Share ${share.id} cannot be ${change} since it has been soft deleted (it is in the recycle bin); restore it first.`,
    );
}
