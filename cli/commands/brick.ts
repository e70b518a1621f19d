/** `abaca brick list|show|add|replace|remove`: the bricks of replicated backends, for admins. */
import type { Command } from 'commander';
import type { Brick, BrickJob } from '../client/types.ts';
import type { Context } from '../context.ts';
import { CommandError, EXIT } from '../errors.ts';
import { listOutput, printList, printShow, showOutput } from '../output.ts';
import { act, examples, type Opts, parsePositiveInt, waitOptions } from './common.ts';

const POLL_MS = 1000;

function jobText(j: BrickJob | null): string | null {
  if (!j) return null;
  const what = j.kind === 'replace' ? `replace by ${j.new_address}` : 'drain';
  const end = j.finished_at ? `, finished ${j.finished_at}` : '';
  return `${what}: ${j.state}, ${j.shares_moved}/${j.shares} shares moved, ${j.pending_entries} entries to heal${j.error ? `, error: ${j.error}` : ''}${end}`;
}

function brickRow(b: Brick) {
  return {
    id: b.id,
    address: b.address,
    backend: b.backend,
    host: b.host,
    zone: b.zone,
    up: b.up,
    state: b.state,
    shares: b.shares,
    last_error: b.last_error,
    job: jobText(b.job),
  };
}

/**
 * Follows a brick's job until it ends, printing a progress line on stderr whenever it changes;
 * returns the brick's final state (or throws: the job failed, or the timeout passed).
 */
async function follow(ctx: Context, id: string, opts: Opts): Promise<Brick> {
  const limitMs = parsePositiveInt(String(opts.timeout ?? '900'), '--timeout') * 1000;
  const started = Date.now();
  let last = '';
  for (;;) {
    const b = await ctx.shares.getBrick(id);
    const j = b.job;
    const line = j
      ? `brick ${b.address}: ${j.kind === 'replace' ? 'replacing' : 'draining'} — ${j.shares_moved}/${j.shares} shares moved, ${j.pending_entries} entries to heal${j.current_share ? ` (share ${j.current_share})` : ''}`
      : `brick ${b.address}: ${b.state}`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (!j || j.state === 'done') return b;
    if (j.state === 'failed')
      throw new CommandError(`Brick ${b.address}: ${j.kind} failed: ${j.error ?? 'no reason given'}`);
    if (Date.now() - started > limitMs)
      throw new CommandError(
        `Timed out after ${Math.round((Date.now() - started) / 1000)} s waiting for brick ${b.address} (${jobText(j)}).`,
        EXIT.TIMEOUT,
      );
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** A started replace or drain: the job at once, or with --wait its progress and the final state. */
async function answerJob(ctx: Context, job: BrickJob, opts: Opts): Promise<void> {
  if (!opts.wait) {
    printShow(opts, { brick: job.address, job: jobText(job) });
    process.stderr.write(`Follow it with: abaca brick show ${job.brick_id}\n`);
    return;
  }
  printShow(opts, brickRow(await follow(ctx, job.brick_id, opts)));
}

export function registerBrickCommands(brick: Command): void {
  examples(
    listOutput(
      brick
        .command('list')
        .description(
          'List the bricks of replicated backends, with the progress of replaces and drains (admin only)',
        )
        .option('--backend <name>', 'only the bricks of this backend'),
    ).action(
      act(async (ctx, _args, opts) => {
        const rows = await ctx.shares.listBricks(
          opts.backend === undefined ? undefined : String(opts.backend),
        );
        printList(
          opts,
          ['ID', 'Address', 'Backend', 'Host', 'Zone', 'Up', 'State', 'Shares', 'Job'],
          rows.map((b) => [
            b.id,
            b.address,
            b.backend,
            b.host,
            b.zone,
            b.up,
            b.state,
            b.shares,
            jobText(b.job),
          ]),
        );
      }),
    ),
    ['abaca brick list', 'abaca brick list -f json'],
  );

  examples(
    showOutput(
      brick
        .command('show')
        .description('Show a brick and its job (admin only)')
        .argument('<brick>', 'brick id or address'),
    ).action(
      act(async (ctx, [id], opts) => {
        printShow(opts, brickRow(await ctx.shares.getBrick(String(id))));
      }),
    ),
    ['abaca brick show 127.0.0.1:7001'],
  );

  examples(
    showOutput(
      brick
        .command('add')
        .description('Add a brick (it must answer); new shares may be placed on it (admin only)')
        .argument('<address>', 'the brick daemon, host:port')
        .option('--backend <name>', 'the backend (when several are made of bricks)'),
    ).action(
      act(async (ctx, [address], opts) => {
        const b = await ctx.shares.addBrick(
          String(address),
          opts.backend === undefined ? undefined : String(opts.backend),
        );
        printShow(opts, brickRow(b));
      }),
    ),
    ['abaca brick add 10.0.0.7:7001'],
  );

  examples(
    showOutput(
      waitOptions(
        brick
          .command('replace')
          .description(
            'Replace a (failed) brick by a new empty one: its shares are re-replicated onto the new brick by heal (admin only)',
          )
          .argument('<brick>', 'the brick to replace, by id or address')
          .argument('<new-address>', 'the new, empty brick daemon, host:port'),
        'the new brick holds full copies',
      ),
    ).action(
      act(async (ctx, [id, address], opts) => {
        await answerJob(ctx, await ctx.shares.replaceBrick(String(id), String(address)), opts);
      }),
    ),
    ['abaca brick replace 10.0.0.3:7001 10.0.0.9:7001 --wait'],
  );

  examples(
    showOutput(
      waitOptions(
        brick
          .command('remove')
          .description(
            "Drain a brick (each replica moved to another brick first), then remove it; refused when a share's replica could not go anywhere (admin only)",
          )
          .argument('<brick>', 'brick id or address'),
        'the brick is drained and removed',
      ),
    ).action(
      act(async (ctx, [id], opts) => {
        await answerJob(ctx, await ctx.shares.removeBrick(String(id)), opts);
      }),
    ),
    ['abaca brick remove 10.0.0.4:7001 --wait'],
  );
}
