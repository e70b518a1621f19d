import { accessRulesRepo } from './access-rules.ts';
import { availabilityZonesRepo } from './availability-zones.ts';
import { messagesRepo } from './messages.ts';
import { osServicesRepo } from './os-services.ts';
import { projectsRepo } from './projects.ts';
import { quotasRepo } from './quotas.ts';
import { shareGroupSnapshotsRepo } from './share-group-snapshots.ts';
import { shareGroupTypesRepo } from './share-group-types.ts';
import { shareGroupsRepo } from './share-groups.ts';
import { shareTypesRepo } from './share-types.ts';
import { sharesRepo } from './shares.ts';
import { snapshotsRepo } from './snapshots.ts';
import { tasksRepo } from './tasks.ts';

/**
 * The share API's repositories, as services receive them. createShareServices injects these by
 * default; a test may swap any of them for a fake (Unleash's stores), since a service reaches the
 * database only through what it was given.
 */
export const repos = {
  accessRules: accessRulesRepo,
  availabilityZones: availabilityZonesRepo,
  messages: messagesRepo,
  projects: projectsRepo,
  quotas: quotasRepo,
  osServices: osServicesRepo,
  shareGroupSnapshots: shareGroupSnapshotsRepo,
  shareGroupTypes: shareGroupTypesRepo,
  shareGroups: shareGroupsRepo,
  shareTypes: shareTypesRepo,
  shares: sharesRepo,
  snapshots: snapshotsRepo,
  tasks: tasksRepo,
};

export type Repos = typeof repos;
