/**
 * The CSI messages as proto-loader hands them to handlers (keepCase, longs and enums as strings,
 * defaults filled in, oneofs with a discriminator field) — only the fields the plugin reads or
 * writes. Names follow csi.proto.
 */

export type Dict = Record<string, string>;

export const ACCESS_MODES = [
  'UNKNOWN',
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];

export interface VolumeCapability {
  block?: Record<string, never> | null;
  mount?: { fs_type: string; mount_flags: string[]; volume_mount_group: string } | null;
  access_type?: 'block' | 'mount';
  access_mode: { mode: AccessMode } | null;
}

export interface CapacityRange {
  required_bytes: string;
  limit_bytes: string;
}

export interface Topology {
  segments: Dict;
}

export interface VolumeContentSource {
  snapshot?: { snapshot_id: string } | null;
  volume?: { volume_id: string } | null;
  type?: 'snapshot' | 'volume';
}

export interface Volume {
  capacity_bytes: string;
  volume_id: string;
  volume_context: Dict;
  content_source: VolumeContentSource | null;
  accessible_topology: Topology[];
}

export interface Snapshot {
  size_bytes: string;
  snapshot_id: string;
  source_volume_id: string;
  creation_time: { seconds: string; nanos: number } | null;
  ready_to_use: boolean;
  group_snapshot_id: string;
}

export interface CreateVolumeRequest {
  name: string;
  capacity_range: CapacityRange | null;
  volume_capabilities: VolumeCapability[];
  parameters: Dict;
  secrets: Dict;
  volume_content_source: VolumeContentSource | null;
  accessibility_requirements: { requisite: Topology[]; preferred: Topology[] } | null;
  mutable_parameters: Dict;
}

export interface ControllerPublishVolumeRequest {
  volume_id: string;
  node_id: string;
  volume_capability: VolumeCapability | null;
  readonly: boolean;
  secrets: Dict;
  volume_context: Dict;
}

export interface ValidateVolumeCapabilitiesRequest {
  volume_id: string;
  volume_context: Dict;
  volume_capabilities: VolumeCapability[];
  parameters: Dict;
  secrets: Dict;
  mutable_parameters: Dict;
}

export interface ListRequest {
  max_entries: number;
  starting_token: string;
}

export interface ListSnapshotsRequest extends ListRequest {
  source_volume_id: string;
  snapshot_id: string;
  secrets: Dict;
}

export interface GetCapacityRequest {
  volume_capabilities: VolumeCapability[];
  parameters: Dict;
  accessible_topology: Topology | null;
}

export interface NodeStageVolumeRequest {
  volume_id: string;
  publish_context: Dict;
  staging_target_path: string;
  volume_capability: VolumeCapability | null;
  secrets: Dict;
  volume_context: Dict;
}

export interface NodePublishVolumeRequest {
  volume_id: string;
  publish_context: Dict;
  staging_target_path: string;
  target_path: string;
  volume_capability: VolumeCapability | null;
  readonly: boolean;
  secrets: Dict;
  volume_context: Dict;
}

/** A handler: the request in, the response (or a thrown CsiError) out. */
// biome-ignore lint/suspicious/noExplicitAny: requests are typed per handler in controller.ts / node.ts
export type Handler = (req: any) => Promise<unknown>;
export type Handlers = Record<string, Handler>;
