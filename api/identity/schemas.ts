import { z } from 'zod';
import { Description, Name } from '../validation.ts';

const Ref = z.object({
  id: z.string().min(1).max(64).optional(),
  name: Name.optional(),
});

const UserRef = Ref.extend({ domain: Ref.optional() });

export const AuthBody = z.object({
  auth: z.object(
    {
      identity: z.object(
        {
          methods: z.array(z.string().max(64)).min(1, 'must name at least one method').max(5),
          password: z
            .object({ user: UserRef.extend({ password: z.string({ error: 'is required' }).max(4096) }) })
            .optional(),
          application_credential: Ref.extend({
            secret: z.string({ error: 'is required' }).max(4096),
            user: UserRef.optional(),
          }).optional(),
        },
        { error: 'is required' },
      ),
      scope: z
        .union([
          z.literal('unscoped'),
          z.object({ project: UserRef }).strict(),
          z.object({ domain: Ref }).strict(),
          z.object({ system: z.unknown() }).strict(),
        ])
        .optional(),
    },
    { error: 'is required' },
  ),
});

/** Fields a client may not set through "extra" attributes. */
const RESERVED = new Set(['id', 'links']);

/**
 * Keystone keeps attributes it does not know and returns them (real tooling sends such fields):
 * split a body into the known fields and the rest.
 */
export function withExtra<T extends z.ZodRawShape>(shape: T) {
  const known = new Set(Object.keys(shape));
  return z.looseObject(shape).transform((o) => {
    const extra: Record<string, unknown> = {};
    const base: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (known.has(k)) base[k] = v;
      else if (!RESERVED.has(k)) extra[k] = v;
    }
    return { ...(base as z.output<z.ZodObject<T>>), extra };
  });
}

/** null clears a description, as Keystone allows; stored as ''. */
const OptDescription = Description.nullish().transform((v) => (v === null ? '' : v));
const Bool = z.boolean({ error: 'must be true or false' });
/** The user options Keystone registers; anything else is refused as Keystone does. */
const UserOptions = z
  .object({
    ignore_change_password_upon_first_use: Bool.nullish(),
    ignore_password_expiry: Bool.nullish(),
    ignore_lockout_failure_attempts: Bool.nullish(),
    lock_password: Bool.nullish(),
    ignore_user_inactivity: Bool.nullish(),
    multi_factor_auth_enabled: Bool.nullish(),
    multi_factor_auth_rules: z
      .array(z.array(z.string().max(255)).max(10))
      .max(10)
      .nullish(),
  })
  .strict();
const RoleOptions = z.object({ immutable: Bool.nullish() }).strict();
const ProjectOptions = z.object({ immutable: Bool.nullish() }).strict();
const Tag = z
  .string()
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .regex(/^[^,/]*$/, "must not contain '/' or ','");

export const DomainCreate = z.object({
  domain: withExtra({ name: Name, description: OptDescription, enabled: Bool.optional() }),
});
export const DomainUpdate = z.object({
  domain: withExtra({ name: Name.optional(), description: OptDescription, enabled: Bool.optional() }),
});

const projectShape = {
  domain_id: z.string().min(1).max(64).optional(),
  description: OptDescription,
  enabled: Bool.optional(),
  tags: z.array(Tag).max(80).optional(),
  options: ProjectOptions.optional(),
  // Keystone accepts these; with no project hierarchy here, a project's parent is its domain.
  parent_id: z.string().max(64).nullish(),
  is_domain: z.literal(false, { error: 'projects acting as domains are not supported' }).optional(),
};
export const ProjectCreate = z.object({ project: withExtra({ name: Name, ...projectShape }) });
export const ProjectUpdate = z.object({ project: withExtra({ name: Name.optional(), ...projectShape }) });

const userShape = {
  domain_id: z.string().min(1).max(64).optional(),
  password: z.string().max(4096).nullish(),
  enabled: Bool.optional(),
  default_project_id: z.string().max(64).nullish(),
  options: UserOptions.optional(),
};
export const UserCreate = z.object({ user: withExtra({ name: Name, ...userShape }) });
export const UserUpdate = z.object({ user: withExtra({ name: Name.optional(), ...userShape }) });
export const PasswordChange = z.object({
  user: z.object({
    original_password: z.string({ error: 'is required' }).max(4096),
    password: z.string({ error: 'is required' }).min(1, 'must not be empty').max(4096),
  }),
});

const roleShape = {
  description: OptDescription,
  options: RoleOptions.optional(),
  domain_id: z.null().optional(),
};
export const RoleCreate = z.object({ role: withExtra({ name: Name, ...roleShape }) });
export const RoleUpdate = z.object({ role: withExtra({ name: Name.optional(), ...roleShape }) });

export const ApplicationCredentialCreate = z.object({
  application_credential: z.object({
    name: Name,
    secret: z.string().min(1).max(4096).nullish(),
    description: OptDescription,
    expires_at: z.iso
      .datetime({ offset: true, local: true, error: 'must be an ISO 8601 time such as 2027-01-01T00:00:00Z' })
      .transform((s) => new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`))
      .nullish(),
    roles: z.array(Ref).max(50).optional(),
    unrestricted: Bool.nullish(),
    access_rules: z.array(z.unknown()).max(0, 'access rules are not supported').optional(),
  }),
});

export const NameFilter = z.object({ name: z.string().max(255).optional() }).loose();
