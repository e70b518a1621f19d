/** `abaca share quota show|set|delete` and `abaca share limits show`. */
import type { Command } from 'commander';
import { UsageError } from '../errors.ts';
import { listOutput, printList, printShow, showOutput, sortedRecord } from '../output.ts';
import { act, examples, parseLimit } from './common.ts';

/** Quota resources: option name → quota_set key. */
const RESOURCES = [
  ['shares', 'shares', 'number of shares'],
  ['snapshots', 'snapshots', 'number of snapshots'],
  ['gigabytes', 'gigabytes', 'total GiB of shares'],
  ['snapshot-gigabytes', 'snapshot_gigabytes', 'total GiB of snapshots'],
  ['share-networks', 'share_networks', 'number of share networks'],
  ['share-groups', 'share_groups', 'number of share groups'],
  ['share-group-snapshots', 'share_group_snapshots', 'number of share group snapshots'],
  ['share-replicas', 'share_replicas', 'number of share replicas'],
  ['replica-gigabytes', 'replica_gigabytes', 'total GiB of share replicas'],
  ['per-share-gigabytes', 'per_share_gigabytes', 'largest share in GiB'],
] as const;

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function registerQuotaCommands(quota: Command): void {
  examples(
    showOutput(
      quota
        .command('show')
        .description("Show a project's share quotas")
        .argument('[project]', "project, by name or ID (default: the token's project)")
        .option('--share-type <share-type>', 'the quotas of this share type')
        .option('--detail', 'show limit, use and reservations of each resource')
        .option('--defaults', 'show the default quotas'),
    ).action(
      act(async (ctx, [project], opts) => {
        if (opts.detail && opts.defaults) throw new UsageError('Give --detail or --defaults, not both.');
        const id = project ? await ctx.projectId(String(project)) : await ctx.currentProjectId();
        const q = await ctx.shares.getQuotaSet(id, {
          detail: Boolean(opts.detail),
          defaults: Boolean(opts.defaults),
          ...(opts.shareType ? { shareType: opts.shareType as string } : {}),
        });
        const { id: _id, ...rest } = q;
        printShow(opts, sortedRecord(rest));
      }),
    ),
    ['abaca share quota show', 'abaca share quota show demo --detail -f json'],
  );

  const set = quota
    .command('set')
    .description("Change a project's share quotas (admin only); -1 means unlimited")
    .argument('<project>', 'project, by name or ID');
  for (const [flag, , what] of RESOURCES) set.option(`--${flag} <n>`, `limit on the ${what}`);
  examples(
    set
      .option('--share-type <share-type>', 'set the quotas of this share type within the project')
      .option('--force', 'lower a limit below what is in use')
      .action(
        act(async (ctx, [project], opts) => {
          const values: Record<string, number> = {};
          for (const [flag, key] of RESOURCES) {
            const v = opts[camel(flag)];
            if (v !== undefined) values[key] = parseLimit(v as string, `--${flag}`);
          }
          if (!Object.keys(values).length)
            throw new UsageError(
              `Nothing to change: give at least one of ${RESOURCES.map(([f]) => `--${f}`).join(', ')}.`,
            );
          const id = await ctx.projectId(String(project));
          await ctx.shares.updateQuotaSet(id, values, {
            ...(opts.shareType ? { shareType: opts.shareType as string } : {}),
            force: Boolean(opts.force),
          });
        }),
      ),
    ['abaca share quota set demo --shares 20 --gigabytes 500', 'abaca share quota set demo --gigabytes -1'],
  );

  examples(
    quota
      .command('delete')
      .description("Reset a project's share quotas to the defaults (admin only)")
      .argument('<project>', 'project, by name or ID')
      .option('--share-type <share-type>', "reset only this share type's quotas")
      .action(
        act(async (ctx, [project], opts) => {
          const id = await ctx.projectId(String(project));
          await ctx.shares.deleteQuotaSet(id, opts.shareType ? { shareType: opts.shareType as string } : {});
        }),
      ),
    ['abaca share quota delete demo'],
  );
}

export function registerLimitsCommands(limits: Command): void {
  examples(
    listOutput(
      limits
        .command('show')
        .description("Show the token's project limits: absolute (quotas and use) or rate limits")
        .option('--absolute', 'absolute limits (the default)')
        .option('--rate', 'rate limits'),
    ).action(
      act(async (ctx, _args, opts) => {
        if (opts.absolute && opts.rate) throw new UsageError('Give --absolute or --rate, not both.');
        const l = await ctx.shares.getLimits();
        if (opts.rate) {
          const rows: unknown[][] = [];
          for (const r of l.rate ?? [])
            for (const x of r.limit ?? [])
              rows.push([x.verb, r.regex, r.uri, x.value, x.remaining, x.unit, x['next-available']]);
          printList(opts, ['Verb', 'Regex', 'URI', 'Value', 'Remaining', 'Unit', 'Next Available'], rows);
          return;
        }
        printList(
          opts,
          ['Name', 'Value'],
          Object.entries(l.absolute ?? {}).map(([k, v]) => [k, v]),
        );
      }),
    ),
    ['abaca share limits show --absolute', 'abaca share limits show -f json'],
  );
}
