/**
 * What the Manila v2 and Keystone v3 APIs return, as the wire spells it (snake_case). Only the
 * fields the client relies on are typed strictly; the servers may add more, which are kept.
 */

/** Share statuses (manila/common/constants.py); every status containing `error` is a failure. */
export type ShareStatus =
  | 'creating'
  | 'creating_from_snapshot'
  | 'available'
  | 'error'
  | 'deleting'
  | 'error_deleting'
  | 'extending'
  | 'extending_error'
  | 'shrinking'
  | 'shrinking_error'
  | 'shrinking_possible_data_loss_error'
  | 'reverting'
  | 'reverting_error'
  | (string & {});

export type SnapshotStatus =
  | 'creating'
  | 'available'
  | 'error'
  | 'deleting'
  | 'error_deleting'
  | (string & {});

export type AccessState =
  | 'queued_to_apply'
  | 'applying'
  | 'active'
  | 'error'
  | 'queued_to_deny'
  | 'denying'
  | 'queued_to_update'
  | 'updating'
  | (string & {});

export const ACCESS_TYPES = ['ip', 'user', 'cert', 'cephx'] as const;
export type AccessType = (typeof ACCESS_TYPES)[number];
export const ACCESS_LEVELS = ['rw', 'ro'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export interface Share {
  id: string;
  name: string | null;
  description: string | null;
  size: number;
  status: ShareStatus;
  share_proto: string;
  availability_zone: string | null;
  created_at: string | null;
  project_id: string;
  user_id?: string;
  snapshot_id: string | null;
  metadata: Record<string, string>;
  share_type: string | null;
  share_type_name: string | null;
  is_public: boolean;
  host?: string;
  [key: string]: unknown;
}

export interface Snapshot {
  id: string;
  share_id: string;
  name: string | null;
  description: string | null;
  size: number;
  share_size?: number;
  status: SnapshotStatus;
  share_proto?: string;
  created_at: string | null;
  project_id?: string;
  user_id?: string;
  [key: string]: unknown;
}

export interface ShareType {
  id: string;
  name: string;
  description: string | null;
  is_default: boolean;
  'share_type_access:is_public': boolean;
  required_extra_specs: Record<string, string>;
  extra_specs: Record<string, string>;
  [key: string]: unknown;
}

export interface AccessRule {
  id: string;
  share_id?: string;
  access_type: string;
  access_to: string;
  access_level: string;
  state: AccessState;
  access_key: string | null;
  created_at: string | null;
  updated_at: string | null;
  metadata?: Record<string, string>;
  [key: string]: unknown;
}

export interface ExportLocation {
  id: string;
  path: string;
  preferred: boolean;
  share_instance_id?: string;
  is_admin_only?: boolean;
  [key: string]: unknown;
}

export interface SnapshotExportLocation {
  id: string;
  path: string;
  [key: string]: unknown;
}

/** `/quota-sets/{project}`: a number per resource, or `{limit, in_use, reserved}` with `/detail`. */
export type QuotaSet = Record<string, number | { limit: number; in_use: number; reserved: number } | string>;

export interface Limits {
  rate: Array<{ regex?: string; uri?: string; limit?: Array<Record<string, unknown>> }>;
  absolute: Record<string, number>;
}

export interface AvailabilityZone {
  id: string;
  name: string;
  created_at: string | null;
  updated_at: string | null;
}

export interface Service {
  id: number | string;
  binary: string;
  host: string;
  zone: string;
  status: string;
  state: string;
  updated_at: string | null;
}

export interface Message {
  id: string;
  resource_type: string;
  resource_id: string;
  action_id: string;
  user_message: string;
  message_level: string;
  detail_id: string;
  request_id: string;
  created_at: string;
  expires_at: string;
  project_id?: string;
}

// ---- Keystone v3 ----

export interface NamedRef {
  id: string;
  name: string;
}

export interface CatalogEndpoint {
  id?: string;
  interface: string;
  region?: string | null;
  region_id?: string | null;
  url: string;
}

export interface CatalogEntry {
  id?: string;
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}

/** The body of POST/GET /v3/auth/tokens. */
export interface TokenBody {
  token: {
    methods: string[];
    expires_at: string;
    issued_at?: string;
    user: NamedRef & { domain?: NamedRef };
    project?: NamedRef & { domain?: NamedRef };
    roles?: NamedRef[];
    catalog?: CatalogEntry[];
    application_credential?: { id: string; name: string; restricted: boolean };
  };
}

export interface Project {
  id: string;
  name: string;
  domain_id: string;
  description: string;
  enabled: boolean;
  parent_id?: string | null;
  is_domain?: boolean;
  tags?: string[];
  options?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface User {
  id: string;
  name: string;
  domain_id: string;
  enabled: boolean;
  default_project_id?: string;
  password_expires_at?: string | null;
  options?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Role {
  id: string;
  name: string;
  domain_id?: string | null;
  description?: string;
  [key: string]: unknown;
}

export interface Domain {
  id: string;
  name: string;
  enabled: boolean;
  [key: string]: unknown;
}

export interface ApplicationCredential {
  id: string;
  name: string;
  user_id?: string;
  project_id: string;
  description: string | null;
  expires_at: string | null;
  unrestricted: boolean;
  roles: Array<{ id: string; name?: string; domain_id?: string | null }>;
  access_rules?: unknown[];
  /** Only in the answer to create. */
  secret?: string;
  [key: string]: unknown;
}

export interface RoleAssignment {
  role: { id: string; name?: string };
  user?: { id: string; name?: string };
  scope: { project?: { id: string; name?: string }; domain?: { id: string; name?: string } };
}

/** GET /v2/shares/{id}/heal (abaca's own). */
export interface ShareHeal {
  share_id: string;
  status: string;
  pending_entries: number;
  split_brain_entries: string[];
  last_heal: {
    kind: string;
    started_at: string;
    finished_at: string | null;
    error: string | null;
    entries_healed: number | null;
    bytes_copied: number | null;
    split_brain_found: number | null;
  } | null;
  replicas: Array<{
    brick_id: string;
    address: string;
    connected: boolean;
    pending_entries: number;
    entries: Array<{ path: string; split_brain: boolean; healing: boolean }>;
  }>;
}

/** GET /v2/scheduler-stats/pools/detail. */
export interface Pool {
  name: string;
  host: string;
  backend: string;
  pool: string;
  capabilities?: Record<string, unknown>;
}

/** A brick job's progress (GET /v2/abaca/bricks): a replace or a drain. */
export interface BrickJob {
  kind: 'replace' | 'remove';
  brick_id: string;
  address: string;
  new_brick_id: string | null;
  new_address: string | null;
  state: 'running' | 'done' | 'failed';
  shares: number;
  shares_moved: number;
  pending_entries: number;
  current_share: string | null;
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

export interface Brick {
  id: string | null;
  address: string;
  backend: string;
  host: string;
  zone: string;
  up: boolean;
  state: string;
  shares: number;
  last_error: string | null;
  job: BrickJob | null;
}
