/** `abaca share create|list|show|set|unset|delete|resize|revert` (python-manilaclient's OSC names). */
import type { Command } from 'commander';
import {
  type ExportLocation,
  pythonDict,
  type Query,
  type Share,
  waitForShare,
  waitForShareDeleted,
} from '../client/index.ts';
import type { Context } from '../context.ts';
import { looksLikeId } from '../context.ts';
import { CommandError, UsageError } from '../errors.ts';
import { listOutput, printList, printShow, showOutput, sortedRecord } from '../output.ts';
import {
  act,
  collect,
  deleteEach,
  examples,
  keyValues,
  type Opts,
  parseBool,
  parsePositiveInt,
  waitOptions,
} from './common.ts';

/** A share as `openstack share show` prints it: metadata as `properties`, no links, sorted. */
export function shareRecord(s: Share, exportLocations?: ExportLocation[]): Record<string, unknown> {
  const { links: _links, metadata, ...rest } = s;
  const rec: Record<string, unknown> = { ...rest, properties: metadata ?? {} };
  if (exportLocations) rec.export_locations = exportLocations;
  return sortedRecord(rec);
}

/** Shows a share with its export locations (fetched once it is available). */
async function showShare(ctx: Context, opts: Opts, share: Share): Promise<void> {
  const locations = share.status === 'available' ? await ctx.shares.listExportLocations(share.id) : [];
  printShow(opts, shareRecord(share, locations));
}

const LIST_COLUMNS: [string, (s: Share) => unknown][] = [
  ['ID', (s) => s.id],
  ['Name', (s) => s.name],
  ['Size', (s) => s.size],
  ['Share Proto', (s) => s.share_proto],
  ['Status', (s) => s.status],
  ['Is Public', (s) => s.is_public],
  ['Share Type Name', (s) => s.share_type_name],
  ['Host', (s) => s.host ?? null],
  ['Availability Zone', (s) => s.availability_zone],
];

const LONG_COLUMNS: [string, (s: Share) => unknown][] = [
  ...LIST_COLUMNS,
  ['Description', (s) => s.description],
  ['Share Type', (s) => s.share_type],
  ['Share Network ID', (s) => s.share_network_id ?? null],
  ['Share Server ID', (s) => s.share_server_id ?? null],
  ['Share Group ID', (s) => s.share_group_id ?? null],
  ['Project ID', (s) => s.project_id],
  ['User ID', (s) => s.user_id ?? null],
  ['Access Rules Status', (s) => s.access_rules_status ?? null],
  ['Source Snapshot ID', (s) => s.snapshot_id],
  ['Supports Creating Snapshots', (s) => s.snapshot_support ?? null],
  ['Supports Cloning Snapshots', (s) => s.create_share_from_snapshot_support ?? null],
  ['Supports Mounting snapshots', (s) => s.mount_snapshot_support ?? null],
  ['Supports Reverting to Snapshot', (s) => s.revert_to_snapshot_support ?? null],
  ['Storage Task State', (s) => s.task_state ?? null],
  ['Share Replication Type', (s) => s.replication_type ?? null],
  ['Has Replicas', (s) => s.has_replicas ?? null],
  ['Created At', (s) => s.created_at],
  ['Properties', (s) => s.metadata ?? {}],
];

export function registerShareCommands(share: Command): void {
  examples(
    showOutput(
      waitOptions(
        share
          .command('create')
          .description('Create a new share')
          .argument('<share_protocol>', 'share protocol: NFS, CIFS, CEPHFS, GLUSTERFS, HDFS or MAPRFS')
          .argument('<size>', 'share size in GiB')
          .option('--name <name>', 'share name')
          .option('--description <description>', 'share description')
          .option(
            '--share-type <share-type>',
            'share type, by name or ID (default: the type named "default")',
          )
          .option('--availability-zone <zone>', 'availability zone to create the share in')
          .option('--property <key=value>', 'metadata to set on the share (repeatable)', collect)
          .option('--public <true|false>', 'make the share visible to every project (admin only)')
          .option('--snapshot-id <snapshot>', 'create the share from this snapshot'),
        'the share is available',
      ),
    ).action(
      act(async (ctx, [proto, size], opts) => {
        const created = await ctx.shares.createShare({
          share_proto: String(proto).toUpperCase(),
          size: parsePositiveInt(String(size), 'size'),
          name: (opts.name as string | undefined) ?? null,
          description: (opts.description as string | undefined) ?? null,
          share_type: (opts.shareType as string | undefined) ?? null,
          availability_zone: (opts.availabilityZone as string | undefined) ?? null,
          metadata: keyValues(opts.property as string[] | undefined, '--property'),
          is_public: opts.public === undefined ? false : parseBool(opts.public as string, '--public'),
          snapshot_id: (opts.snapshotId as string | undefined) ?? null,
        });
        let result = created;
        if (opts.wait) {
          const done = await ctx.wait(`share ${created.id}`, 'available', opts, (p) =>
            waitForShare(ctx.shares, created.id, p),
          );
          if (done) result = done;
        }
        await showShare(ctx, opts, result);
      }),
    ),
    [
      'abaca share create NFS 1 --name data --wait',
      'abaca share create NFS 10 --name db --share-type gold --property team=db -f json',
      'ID=$(abaca share create NFS 1 --name scratch -f value -c id)',
    ],
  );

  examples(
    listOutput(
      share
        .command('list')
        .description('List shares')
        .option('--all-projects', "include every project's shares (admin only)")
        .option('--project <project>', "only this project's shares, by name or ID (admin only)")
        .option('--name <name>', 'only shares with exactly this name')
        .option('--name~ <text>', 'only shares whose name contains this')
        .option('--description~ <text>', 'only shares whose description contains this')
        .option('--status <status>', 'only shares in this status')
        .option('--share-type <share-type>', 'only shares of this type, by name or ID')
        .option('--property <key=value>', 'only shares with this metadata (repeatable)', collect)
        .option(
          '--extra-spec <key=value>',
          'only shares whose type has this extra spec (repeatable)',
          collect,
        )
        .option('--public', "also list other projects' public shares")
        .option('--export-location <id-or-path>', 'only the share with this export location')
        .option('--availability-zone <zone>', 'only shares in this availability zone')
        .option('--limit <n>', 'list at most this many shares')
        .option('--marker <share-id>', 'start after this share (paging)')
        .option('--sort <key[:asc|desc]>', 'sort on the server: id, name, status, size, created_at, …')
        .option('--long', 'list every field'),
    ).action(
      act(async (ctx, _args, opts) => {
        const q: Query = {};
        if (opts.allProjects) q.all_tenants = 1;
        if (opts.project) {
          q.all_tenants = 1;
          q.project_id = await ctx.projectId(opts.project as string);
        }
        if (opts.name) q.name = opts.name as string;
        if (opts['name~']) q['name~'] = opts['name~'] as string;
        if (opts['description~']) q['description~'] = opts['description~'] as string;
        if (opts.status) q.status = opts.status as string;
        if (opts.shareType) q.share_type_id = (await ctx.findShareType(opts.shareType as string)).id;
        const props = keyValues(opts.property as string[] | undefined, '--property');
        if (Object.keys(props).length) q.metadata = pythonDict(props);
        const specs = keyValues(opts.extraSpec as string[] | undefined, '--extra-spec');
        if (Object.keys(specs).length) q.extra_specs = pythonDict(specs);
        if (opts.public) q.is_public = 'True';
        if (opts.exportLocation) {
          const el = opts.exportLocation as string;
          if (looksLikeId(el)) q.export_location_id = el;
          else q.export_location_path = el;
        }
        if (opts.availabilityZone) q.availability_zone = opts.availabilityZone as string;
        if (opts.limit !== undefined) q.limit = parsePositiveInt(opts.limit as string, '--limit');
        if (opts.marker) q.marker = opts.marker as string;
        if (opts.sort) {
          const [key, dir] = (opts.sort as string).split(':');
          if (dir !== undefined && dir !== 'asc' && dir !== 'desc')
            throw new UsageError(`--sort direction must be asc or desc, got '${dir}'.`);
          q.sort_key = key;
          if (dir) q.sort_dir = dir;
        }
        const rows = await ctx.shares.listShares(q);
        const cols = opts.long ? LONG_COLUMNS : LIST_COLUMNS;
        printList(
          opts,
          cols.map(([h]) => h),
          rows.map((s) => cols.map(([, f]) => f(s))),
        );
      }),
    ),
    [
      'abaca share list',
      'abaca share list --status error -f value -c ID',
      'abaca share list --all-projects --long -f json',
      'abaca share list --property team=db --sort-column Size --sort-descending',
    ],
  );

  examples(
    showOutput(
      share
        .command('show')
        .description('Show a share, with its export locations')
        .argument('<share>', 'share, by name or ID'),
    ).action(
      act(async (ctx, [name], opts) => {
        await showShare(ctx, opts, await ctx.findShare(String(name)));
      }),
    ),
    ['abaca share show data', 'abaca share show data -f json', 'abaca share show data -f value -c status'],
  );

  examples(
    share
      .command('set')
      .description('Change a share: name, description, visibility, metadata, or (admin) its status')
      .argument('<share>', 'share, by name or ID')
      .option('--name <name>', 'new name')
      .option('--description <description>', 'new description')
      .option('--public <true|false>', 'visible to every project or not (admin only)')
      .option('--property <key=value>', 'metadata to add or change (repeatable)', collect)
      .option('--status <status>', "reset the share's status without touching storage (admin only)")
      .action(
        act(async (ctx, [name], opts) => {
          const s = await ctx.findShare(String(name));
          const fields: Record<string, unknown> = {};
          if (opts.name !== undefined) fields.display_name = opts.name;
          if (opts.description !== undefined) fields.display_description = opts.description;
          if (opts.public !== undefined) fields.is_public = parseBool(opts.public as string, '--public');
          const props = keyValues(opts.property as string[] | undefined, '--property');
          if (!Object.keys(fields).length && !Object.keys(props).length && opts.status === undefined)
            throw new UsageError(
              'Nothing to change: give --name, --description, --public, --property or --status.',
            );
          if (Object.keys(fields).length) await ctx.shares.updateShare(s.id, fields);
          if (Object.keys(props).length) await ctx.shares.setShareMetadata(s.id, props);
          if (opts.status !== undefined) await ctx.shares.resetShareStatus(s.id, opts.status as string);
        }),
      ),
    [
      'abaca share set data --name data2 --description "team data"',
      'abaca share set data --property owner=alice',
    ],
  );

  examples(
    share
      .command('unset')
      .description("Remove a share's metadata, name or description")
      .argument('<share>', 'share, by name or ID')
      .option('--property <key>', 'metadata key to remove (repeatable)', collect)
      .option('--name', 'clear the name')
      .option('--description', 'clear the description')
      .action(
        act(async (ctx, [name], opts) => {
          const s = await ctx.findShare(String(name));
          const keys = (opts.property as string[] | undefined) ?? [];
          if (!keys.length && !opts.name && !opts.description)
            throw new UsageError('Nothing to unset: give --property, --name or --description.');
          const fields: Record<string, unknown> = {};
          if (opts.name) fields.display_name = null;
          if (opts.description) fields.display_description = null;
          if (Object.keys(fields).length) await ctx.shares.updateShare(s.id, fields);
          for (const key of keys) await ctx.shares.deleteShareMetadata(s.id, key);
        }),
      ),
    ['abaca share unset data --property owner'],
  );

  examples(
    waitOptions(
      share
        .command('delete')
        .description('Delete one or more shares')
        .argument('<share...>', 'shares, by name or ID')
        .option(
          '--force',
          'delete whatever state the share is in and whatever the backend says (admin only)',
        ),
      'the share is gone',
    ).action(
      act(async (ctx, [names], opts) => {
        await deleteEach(ctx, 'share', names as string[], async (name) => {
          const s = await ctx.findShare(name);
          if (opts.force) await ctx.shares.forceDeleteShare(s.id);
          else await ctx.shares.deleteShare(s.id);
          if (opts.wait)
            await ctx.wait(`share ${s.id}`, 'deleted', opts, (p) => waitForShareDeleted(ctx.shares, s.id, p));
        });
      }),
    ),
    ['abaca share delete data --wait', 'abaca share delete s1 s2 s3'],
  );

  examples(
    waitOptions(
      share
        .command('resize')
        .description('Grow (extend) or shrink a share to a new size')
        .argument('<share>', 'share, by name or ID')
        .argument('<new_size>', 'new size in GiB')
        .option('--force', 'extend even beyond the share type quota checks (admin only)'),
      'the share is available at its new size',
    ).action(
      act(async (ctx, [name, size], opts) => {
        const s = await ctx.findShare(String(name));
        const newSize = parsePositiveInt(String(size), 'new_size');
        if (newSize === s.size) throw new CommandError(`Share ${s.name ?? s.id} is already ${newSize} GiB.`);
        if (newSize > s.size) await ctx.shares.extendShare(s.id, newSize, Boolean(opts.force));
        else {
          if (opts.force) throw new UsageError('--force applies to growing a share only.');
          await ctx.shares.shrinkShare(s.id, newSize);
        }
        if (opts.wait)
          await ctx.wait(`share ${s.id}`, `available at ${newSize} GiB`, opts, (p) =>
            waitForShare(ctx.shares, s.id, { ...p, size: newSize }),
          );
      }),
    ),
    ['abaca share resize data 20 --wait', 'abaca share resize data 5   # shrinks, if the data fits'],
  );

  examples(
    waitOptions(
      share
        .command('revert')
        .description("Revert a share to a snapshot (the share's latest snapshot)")
        .argument('<snapshot>', 'snapshot to revert to, by name or ID'),
      'the share is available again',
    ).action(
      act(async (ctx, [name], opts) => {
        const snap = await ctx.findSnapshot(String(name));
        await ctx.shares.revertShare(snap.share_id, snap.id);
        if (opts.wait)
          await ctx.wait(`share ${snap.share_id}`, 'available', opts, (p) =>
            waitForShare(ctx.shares, snap.share_id, p),
          );
      }),
    ),
    ['abaca share revert nightly --wait'],
  );
}
