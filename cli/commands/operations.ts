/** `abaca share availability zone list`, `share service list`, `share message list|show|delete`. */
import type { Command } from 'commander';
import type { Query } from '../client/index.ts';
import { listOutput, printList, printShow, showOutput, sortedRecord } from '../output.ts';
import { act, deleteEach, examples, parsePositiveInt } from './common.ts';

export function registerAvailabilityZoneCommands(zone: Command): void {
  examples(
    listOutput(zone.command('list').description('List availability zones')).action(
      act(async (ctx, _args, opts) => {
        const rows = await ctx.shares.listAvailabilityZones();
        printList(
          opts,
          ['Id', 'Name', 'Created At', 'Updated At'],
          rows.map((z) => [z.id, z.name, z.created_at, z.updated_at]),
        );
      }),
    ),
    ['abaca share availability zone list -f value -c Name'],
  );
}

export function registerServiceCommands(service: Command): void {
  examples(
    listOutput(
      service
        .command('list')
        .description('List share services: schedulers and storage backends (admin only)')
        .option('--host <host>', 'only services on this host')
        .option('--binary <binary>', 'only this binary: manila-scheduler or manila-share')
        .option('--status <status>', 'only enabled or disabled services')
        .option('--state <state>', 'only services that are up or down')
        .option('--zone <zone>', 'only services in this availability zone'),
    ).action(
      act(async (ctx, _args, opts) => {
        const q: Query = {};
        for (const k of ['host', 'binary', 'status', 'state', 'zone'] as const)
          if (opts[k] !== undefined) q[k] = opts[k] as string;
        const rows = await ctx.shares.listServices(q);
        printList(
          opts,
          ['ID', 'Binary', 'Host', 'Zone', 'Status', 'State', 'Updated At'],
          rows.map((s) => [s.id, s.binary, s.host, s.zone, s.status, s.state, s.updated_at]),
        );
      }),
    ),
    ['abaca share service list', 'abaca share service list --binary manila-share --state down'],
  );
}

export function registerMessageCommands(message: Command): void {
  examples(
    listOutput(
      message
        .command('list')
        .description('List user messages: why an operation on a resource failed')
        .option('--resource-id <id>', 'only messages about this resource')
        .option('--resource-type <type>', 'only messages about this kind of resource (SHARE, …)')
        .option('--action-id <id>', 'only messages from this action')
        .option('--detail-id <id>', 'only messages with this detail')
        .option('--request-id <id>', 'only messages from this request')
        .option('--message-level <level>', 'only messages of this level (ERROR)')
        .option('--limit <n>', 'list at most this many messages'),
    ).action(
      act(async (ctx, _args, opts) => {
        const q: Query = {};
        for (const [opt, key] of [
          ['resourceId', 'resource_id'],
          ['resourceType', 'resource_type'],
          ['actionId', 'action_id'],
          ['detailId', 'detail_id'],
          ['requestId', 'request_id'],
          ['messageLevel', 'message_level'],
        ] as const)
          if (opts[opt] !== undefined) q[key] = opts[opt] as string;
        if (opts.limit !== undefined) q.limit = parsePositiveInt(opts.limit as string, '--limit');
        const rows = await ctx.shares.listMessages(q);
        printList(
          opts,
          ['ID', 'Resource Type', 'Resource ID', 'Action ID', 'User Message', 'Detail ID', 'Created At'],
          rows.map((m) => [
            m.id,
            m.resource_type,
            m.resource_id,
            m.action_id,
            m.user_message,
            m.detail_id,
            m.created_at,
          ]),
        );
      }),
    ),
    ['abaca share message list', 'abaca share message list --resource-id "$SHARE_ID" -f json'],
  );
  examples(
    showOutput(
      message.command('show').description('Show a user message').argument('<message>', 'message ID'),
    ).action(
      act(async (ctx, [id], opts) => {
        printShow(opts, sortedRecord({ ...(await ctx.shares.getMessage(String(id))) }));
      }),
    ),
    ['abaca share message show 8a0e…'],
  );
  examples(
    message
      .command('delete')
      .description('Delete user messages')
      .argument('<message...>', 'message IDs')
      .action(
        act(async (ctx, [ids]) => {
          await deleteEach(ctx, 'message', ids as string[], (id) => ctx.shares.deleteMessage(id));
        }),
      ),
    ['abaca share message delete 8a0e…'],
  );
}
