import { REQUIRED_SPECS, tenantVisibleSpecs } from '../../services/extra-specs.ts';
import type { Auth } from '../../services/policy.ts';
import type { ShareType } from '../../services/repos/share-types.ts';
import { DEFAULT_SHARE_TYPE } from '../../services/share-types.ts';
import { atLeast, type Microversion } from '../middleware/microversion.ts';

/**
 * A share type as Manila renders it (manila/api/views/types.py), by microversion: the is_public key
 * is `os-share-type-access:is_public` up to 2.6 and `share_type_access:is_public` from 2.7;
 * non-admins see only tenant-visible specs, with the inferred capability flags from 2.24;
 * `description` from 2.41; `is_default` from 2.46.
 */
export function shareType(t: ShareType, auth: Auth, v: Microversion) {
  const specs = auth.isAdmin
    ? t.extra_specs
    : tenantVisibleSpecs(t.extra_specs, { inferFlags: atLeast(v, '2.24') });
  const required = Object.fromEntries(
    Object.entries(t.extra_specs).filter(([k]) => (REQUIRED_SPECS as readonly string[]).includes(k)),
  );
  const out: Record<string, unknown> = {
    id: t.id,
    name: t.name,
    required_extra_specs: required,
    extra_specs: specs,
  };
  if (atLeast(v, '2.7')) out['share_type_access:is_public'] = t.is_public;
  else out['os-share-type-access:is_public'] = t.is_public;
  if (atLeast(v, '2.41')) out.description = t.description;
  if (atLeast(v, '2.46')) out.is_default = t.name === DEFAULT_SHARE_TYPE;
  return out;
}

/** Create and show wrap the type twice, as Manila does (`volume_type` for old clients). */
export function shareTypeEnvelope(t: ShareType, auth: Auth, v: Microversion) {
  const body = shareType(t, auth, v);
  return { share_type: body, volume_type: body };
}
