import { REQUIRED_SPECS, tenantVisibleSpecs } from '../../services/extra-specs.ts';
import type { Auth } from '../../services/policy.ts';
import type { ShareType } from '../../services/repos/share-types.ts';
import { DEFAULT_SHARE_TYPE } from '../../services/share-types.ts';

/** A share type as Manila renders it; non-admins see only tenant-visible specs (with inferred flags). */
export function shareType(t: ShareType, auth: Auth) {
  const specs = auth.isAdmin ? t.extra_specs : tenantVisibleSpecs(t.extra_specs);
  const required = Object.fromEntries(
    Object.entries(t.extra_specs).filter(([k]) => (REQUIRED_SPECS as readonly string[]).includes(k)),
  );
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    is_default: t.name === DEFAULT_SHARE_TYPE,
    'share_type_access:is_public': t.is_public,
    'os-share-type-access:is_public': t.is_public,
    required_extra_specs: required,
    extra_specs: specs,
  };
}

/** Create and show wrap the type twice, as Manila does (`volume_type` for old clients). */
export function shareTypeEnvelope(t: ShareType, auth: Auth) {
  const v = shareType(t, auth);
  return { share_type: v, volume_type: v };
}
