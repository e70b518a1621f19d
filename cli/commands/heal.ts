/** `abaca share heal info|start|resolve` and `abaca share pool list`: replicated storage, for admins. */
import type { Command } from 'commander';
import type { Query } from '../client/index.ts';
import { UsageError } from '../errors.ts';
import { listOutput, printList, printShow, showOutput } from '../output.ts';
import { act, examples } from './common.ts';

const POLICIES = ['source-brick', 'latest-mtime', 'bigger-file'] as const;

export function registerHealCommands(heal: Command): void {
  examples(
    showOutput(
      heal
        .command('info')
        .description(
          "A share's replicas: connected, pending entries, split-brain paths, last heal (admin only)",
        )
        .argument('<share>', 'share, by name or ID'),
    ).action(
      act(async (ctx, [name], opts) => {
        const share = await ctx.findShare(String(name));
        const h = await ctx.shares.getShareHeal(share.id);
        const last = h.last_heal;
        printShow(opts, {
          share_id: h.share_id,
          status: h.status,
          pending_entries: h.pending_entries,
          split_brain_entries: h.split_brain_entries,
          last_heal: last
            ? `${last.kind}, started ${last.started_at}, ${last.finished_at ? `finished ${last.finished_at}` : 'running'}${last.error ? `, failed: ${last.error}` : ''}${last.entries_healed !== null ? `, ${last.entries_healed} entries healed` : ''}`
            : null,
          replicas: h.replicas.map(
            (r) =>
              `${r.brick_id} ${r.address} ${r.connected ? 'connected' : 'NOT CONNECTED'}, ${r.pending_entries} pending${
                r.entries.length
                  ? `: ${r.entries.map((e) => `${e.path || '/'}${e.split_brain ? ' (split-brain)' : e.healing ? ' (healing)' : ''}`).join(', ')}`
                  : ''
              }`,
          ),
        });
      }),
    ),
    ['abaca share heal info data', 'abaca share heal info data -f json'],
  );

  examples(
    heal
      .command('start')
      .description('Start a heal of a share’s replicas; follow it with heal info (admin only)')
      .argument('<share>', 'share, by name or ID')
      .option('--full', 'walk the whole tree, not only the paths marked as missed')
      .action(
        act(async (ctx, [name], opts) => {
          const share = await ctx.findShare(String(name));
          await ctx.shares.startShareHeal(share.id, opts.full === true);
          process.stdout.write(`Heal of share ${share.id} started; see: abaca share heal info ${share.id}\n`);
        }),
      ),
    ['abaca share heal start data', 'abaca share heal start data --full'],
  );

  examples(
    showOutput(
      heal
        .command('resolve')
        .description('Resolve a path in split-brain: choose which copy wins (admin only)')
        .argument('<share>', 'share, by name or ID')
        .argument('<path>', 'the path in split-brain, relative to the share root')
        .requiredOption('--policy <policy>', `which copy wins: ${POLICIES.join(', ')}`)
        .option('--source-brick <brick>', 'for source-brick: the brick id or address whose copy wins'),
    ).action(
      act(async (ctx, [name, path], opts) => {
        const policy = String(opts.policy);
        if (!(POLICIES as readonly string[]).includes(policy))
          throw new UsageError(`--policy must be one of ${POLICIES.join(', ')}; got '${policy}'.`);
        if (policy === 'source-brick' && !opts.sourceBrick)
          throw new UsageError('--policy source-brick needs --source-brick <brick id or address>.');
        if (policy !== 'source-brick' && opts.sourceBrick)
          throw new UsageError('--source-brick is only for --policy source-brick.');
        const share = await ctx.findShare(String(name));
        const done = await ctx.shares.resolveShareSplitBrain(share.id, {
          path: String(path),
          policy,
          ...(opts.sourceBrick ? { source_brick: String(opts.sourceBrick) } : {}),
        });
        printShow(opts, done);
      }),
    ),
    [
      'abaca share heal resolve data dir/file --policy latest-mtime',
      'abaca share heal resolve data dir/file --policy source-brick --source-brick 127.0.0.1:24007',
    ],
  );
}

export function registerPoolCommands(pool: Command): void {
  examples(
    listOutput(
      pool
        .command('list')
        .description('List storage pools and their capacity, as the scheduler sees them (admin only)')
        .option('--host <regex>', 'only pools of matching hosts')
        .option('--backend <regex>', 'only pools of matching backends')
        .option('--pool <regex>', 'only matching pool names')
        .option('--detail', 'also capabilities and capacity in GiB'),
    ).action(
      act(async (ctx, _args, opts) => {
        const q: Query = {};
        if (opts.host !== undefined) q['host'] = String(opts.host);
        if (opts.backend !== undefined) q['backend'] = String(opts.backend);
        if (opts.pool !== undefined) q['pool_name'] = String(opts.pool);
        const rows = await ctx.shares.listPools(q, true);
        const cap = (p: (typeof rows)[number], k: string) => p.capabilities?.[k] ?? null;
        if (opts.detail)
          printList(
            opts,
            [
              'Name',
              'Host',
              'Backend',
              'Pool',
              'Total GiB',
              'Free GiB',
              'Allocated GiB',
              'Protocols',
              'Zone',
            ],
            rows.map((p) => [
              p.name,
              p.host,
              p.backend,
              p.pool,
              cap(p, 'total_capacity_gb'),
              cap(p, 'free_capacity_gb'),
              cap(p, 'allocated_capacity_gb'),
              cap(p, 'storage_protocol'),
              cap(p, 'availability_zone'),
            ]),
          );
        else
          printList(
            opts,
            ['Name', 'Host', 'Backend', 'Pool'],
            rows.map((p) => [p.name, p.host, p.backend, p.pool]),
          );
      }),
    ),
    ['abaca share pool list', 'abaca share pool list --detail -f json'],
  );
}
