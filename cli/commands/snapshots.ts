/** `abaca share snapshot create|list|show|set|delete`. */
import type { Command } from 'commander';
import { type Query, type Snapshot, waitForSnapshot, waitForSnapshotDeleted } from '../client/index.ts';
import type { Context } from '../context.ts';
import { UsageError } from '../errors.ts';
import { listOutput, printList, printShow, showOutput, sortedRecord } from '../output.ts';
import { act, deleteEach, examples, type Opts, parsePositiveInt, waitOptions } from './common.ts';

function snapshotRecord(s: Snapshot, exportLocations?: unknown[]): Record<string, unknown> {
  const { links: _links, ...rest } = s;
  const rec: Record<string, unknown> = { ...rest };
  if (exportLocations) rec.export_locations = exportLocations;
  return sortedRecord(rec);
}

async function showSnapshot(ctx: Context, opts: Opts, s: Snapshot): Promise<void> {
  const locations = s.status === 'available' ? await ctx.shares.listSnapshotExportLocations(s.id) : [];
  printShow(opts, snapshotRecord(s, locations));
}

const COLUMNS: [string, (s: Snapshot) => unknown][] = [
  ['ID', (s) => s.id],
  ['Name', (s) => s.name],
];
const DETAIL_COLUMNS: [string, (s: Snapshot) => unknown][] = [
  ...COLUMNS,
  ['Description', (s) => s.description],
  ['Status', (s) => s.status],
  ['Share ID', (s) => s.share_id],
  ['Size', (s) => s.size],
  ['Created At', (s) => s.created_at],
];

export function registerSnapshotCommands(snapshot: Command): void {
  examples(
    showOutput(
      waitOptions(
        snapshot
          .command('create')
          .description('Create a snapshot of a share')
          .argument('<share>', 'share to snapshot, by name or ID')
          .option('--name <name>', 'snapshot name')
          .option('--description <description>', 'snapshot description')
          .option('--force', 'snapshot even if the share is busy (admin only)'),
        'the snapshot is available',
      ),
    ).action(
      act(async (ctx, [name], opts) => {
        const share = await ctx.findShare(String(name));
        let snap = await ctx.shares.createSnapshot({
          share_id: share.id,
          force: Boolean(opts.force),
          name: (opts.name as string | undefined) ?? null,
          description: (opts.description as string | undefined) ?? null,
        });
        if (opts.wait) {
          const id = snap.id;
          snap =
            (await ctx.wait(`snapshot ${id}`, 'available', opts, (p) =>
              waitForSnapshot(ctx.shares, id, p),
            )) ?? snap;
        }
        await showSnapshot(ctx, opts, snap);
      }),
    ),
    [
      'abaca share snapshot create data --name nightly --wait',
      'abaca share snapshot create data -f value -c id',
    ],
  );

  examples(
    listOutput(
      snapshot
        .command('list')
        .description('List share snapshots')
        .option('--all-projects', "include every project's snapshots (admin only)")
        .option('--share <share>', 'only snapshots of this share, by name or ID')
        .option('--name <name>', 'only snapshots with this name')
        .option('--description <description>', 'only snapshots with this description')
        .option('--status <status>', 'only snapshots in this status')
        .option('--name~ <text>', 'only snapshots whose name contains this')
        .option('--description~ <text>', 'only snapshots whose description contains this')
        .option('--limit <n>', 'list at most this many snapshots')
        .option('--marker <snapshot-id>', 'start after this snapshot (paging)')
        .option('--sort <key[:asc|desc]>', 'sort on the server')
        .option('--detail', 'also show description, status, share, size and creation time'),
    ).action(
      act(async (ctx, _args, opts) => {
        const q: Query = {};
        if (opts.allProjects) q.all_tenants = 1;
        if (opts.share) q.share_id = (await ctx.findShare(opts.share as string)).id;
        for (const [opt, key] of [
          ['name', 'name'],
          ['description', 'description'],
          ['status', 'status'],
          ['name~', 'name~'],
          ['description~', 'description~'],
          ['marker', 'marker'],
        ] as const)
          if (opts[opt] !== undefined) q[key] = opts[opt] as string;
        if (opts.limit !== undefined) q.limit = parsePositiveInt(opts.limit as string, '--limit');
        if (opts.sort) {
          const [key, dir] = (opts.sort as string).split(':');
          if (dir !== undefined && dir !== 'asc' && dir !== 'desc')
            throw new UsageError(`--sort direction must be asc or desc, got '${dir}'.`);
          q.sort_key = key;
          if (dir) q.sort_dir = dir;
        }
        const rows = await ctx.shares.listSnapshots(q);
        const cols = opts.detail ? DETAIL_COLUMNS : COLUMNS;
        printList(
          opts,
          cols.map(([h]) => h),
          rows.map((s) => cols.map(([, f]) => f(s))),
        );
      }),
    ),
    ['abaca share snapshot list --share data --detail', 'abaca share snapshot list -f json'],
  );

  examples(
    showOutput(
      snapshot
        .command('show')
        .description('Show a snapshot, with its export locations')
        .argument('<snapshot>', 'snapshot, by name or ID'),
    ).action(
      act(async (ctx, [name], opts) => {
        await showSnapshot(ctx, opts, await ctx.findSnapshot(String(name)));
      }),
    ),
    ['abaca share snapshot show nightly -f json'],
  );

  examples(
    snapshot
      .command('set')
      .description("Change a snapshot's name or description, or (admin) reset its status")
      .argument('<snapshot>', 'snapshot, by name or ID')
      .option('--name <name>', 'new name')
      .option('--description <description>', 'new description')
      .option('--status <status>', 'reset the status without touching storage (admin only)')
      .action(
        act(async (ctx, [name], opts) => {
          const s = await ctx.findSnapshot(String(name));
          const fields: Record<string, string> = {};
          if (opts.name !== undefined) fields.display_name = opts.name as string;
          if (opts.description !== undefined) fields.display_description = opts.description as string;
          if (!Object.keys(fields).length && opts.status === undefined)
            throw new UsageError('Nothing to change: give --name, --description or --status.');
          if (Object.keys(fields).length) await ctx.shares.updateSnapshot(s.id, fields);
          if (opts.status !== undefined) await ctx.shares.resetSnapshotStatus(s.id, opts.status as string);
        }),
      ),
    ['abaca share snapshot set nightly --name nightly-2026-11-22'],
  );

  examples(
    waitOptions(
      snapshot
        .command('delete')
        .description('Delete one or more snapshots')
        .argument('<snapshot...>', 'snapshots, by name or ID')
        .option('--force', 'delete whatever state the snapshot is in (admin only)'),
      'the snapshot is gone',
    ).action(
      act(async (ctx, [names], opts) => {
        await deleteEach(ctx, 'snapshot', names as string[], async (name) => {
          const s = await ctx.findSnapshot(name);
          if (opts.force) await ctx.shares.forceDeleteSnapshot(s.id);
          else await ctx.shares.deleteSnapshot(s.id);
          if (opts.wait)
            await ctx.wait(`snapshot ${s.id}`, 'deleted', opts, (p) =>
              waitForSnapshotDeleted(ctx.shares, s.id, p),
            );
        });
      }),
    ),
    ['abaca share snapshot delete nightly --wait'],
  );
}
