/** `abaca share type create|list|show|set|unset|delete` and `share type access create|list|delete`. */
import type { Command } from 'commander';
import { pythonDict, type ShareType } from '../client/index.ts';
import { UsageError } from '../errors.ts';
import { listOutput, printList, printShow, showOutput } from '../output.ts';
import { act, collect, deleteEach, examples, keyValues, parseBool } from './common.ts';

const REQUIRED = ['driver_handles_share_servers'];

/** A share type as python-manilaclient's OSC plugin shows it (format_share_type). */
function typeRecord(t: ShareType): Record<string, unknown> {
  const required = Object.fromEntries(
    Object.entries(t.extra_specs ?? {}).filter(([k]) => REQUIRED.includes(k)),
  );
  const optional = Object.fromEntries(
    Object.entries(t.extra_specs ?? {}).filter(([k]) => !REQUIRED.includes(k)),
  );
  return {
    id: t.id,
    name: t.name,
    visibility: t['share_type_access:is_public'] ? 'public' : 'private',
    is_default: t.is_default,
    required_extra_specs: Object.keys(t.required_extra_specs ?? {}).length
      ? t.required_extra_specs
      : required,
    optional_extra_specs: optional,
    description: t.description,
  };
}

const HEADERS = [
  'ID',
  'Name',
  'Visibility',
  'Is Default',
  'Required Extra Specs',
  'Optional Extra Specs',
  'Description',
];

const BOOL_SPECS = [
  ['snapshotSupport', 'snapshot_support', '--snapshot-support'],
  [
    'createShareFromSnapshotSupport',
    'create_share_from_snapshot_support',
    '--create-share-from-snapshot-support',
  ],
  ['revertToSnapshotSupport', 'revert_to_snapshot_support', '--revert-to-snapshot-support'],
  ['mountSnapshotSupport', 'mount_snapshot_support', '--mount-snapshot-support'],
] as const;

const py = (b: boolean) => (b ? 'True' : 'False');

export function registerShareTypeCommands(type: Command): void {
  const create = type
    .command('create')
    .description('Create a share type (admin only)')
    .argument('<name>', 'share type name')
    .argument(
      '<spec_driver_handles_share_servers>',
      'required extra spec driver_handles_share_servers: true or false (abaca supports false)',
    )
    .option('--description <description>', 'share type description');
  for (const [, , flag] of BOOL_SPECS)
    create.option(`${flag} <true|false>`, `set the ${flag.slice(2)} extra spec`);
  examples(
    showOutput(
      create
        .option('--extra-specs <key=value>', 'another extra spec (repeatable)', collect)
        .option('--public <true|false>', 'visible to every project (default true)', 'true'),
    ).action(
      act(async (ctx, [name, dhss], opts) => {
        const specs: Record<string, string> = {
          ...keyValues(opts.extraSpecs as string[] | undefined, '--extra-specs'),
          driver_handles_share_servers: py(parseBool(String(dhss), 'spec_driver_handles_share_servers')),
        };
        for (const [opt, spec, flag] of BOOL_SPECS)
          if (opts[opt] !== undefined) specs[spec] = py(parseBool(opts[opt] as string, flag));
        const t = await ctx.shares.createShareType({
          name: String(name),
          extra_specs: specs,
          'share_type_access:is_public': parseBool(opts.public as string, '--public'),
          ...(opts.description !== undefined ? { description: opts.description as string } : {}),
        });
        printShow(opts, typeRecord(t));
      }),
    ),
    [
      'abaca share type create gold false --snapshot-support true --revert-to-snapshot-support true',
      'abaca share type create private-tier false --public false --extra-specs tier=2',
    ],
  );

  examples(
    listOutput(
      type
        .command('list')
        .description('List share types')
        .option('--all', 'include private share types (admin only)')
        .option('--extra-specs <key=value>', 'only types with this extra spec (repeatable)', collect),
    ).action(
      act(async (ctx, _args, opts) => {
        const specs = keyValues(opts.extraSpecs as string[] | undefined, '--extra-specs');
        const rows = await ctx.shares.listShareTypes({
          ...(opts.all ? { is_public: 'all' } : {}),
          ...(Object.keys(specs).length ? { extra_specs: pythonDict(specs) } : {}),
        });
        printList(
          opts,
          HEADERS,
          rows.map((t) => Object.values(typeRecord(t))),
        );
      }),
    ),
    ['abaca share type list', 'abaca share type list --all -f json'],
  );

  examples(
    showOutput(
      type
        .command('show')
        .description('Show a share type')
        .argument('<share_type>', 'share type, by name or ID'),
    ).action(
      act(async (ctx, [name], opts) => {
        printShow(opts, typeRecord(await ctx.findShareType(String(name))));
      }),
    ),
    ['abaca share type show default'],
  );

  examples(
    type
      .command('set')
      .description("Change a share type's extra specs, name, description or visibility (admin only)")
      .argument('<share_type>', 'share type, by name or ID')
      .option('--extra-specs <key=value>', 'extra spec to add or change (repeatable)', collect)
      .option('--name <name>', 'new name')
      .option('--description <description>', 'new description')
      .option('--public <true|false>', 'visible to every project or not')
      .action(
        act(async (ctx, [name], opts) => {
          const t = await ctx.findShareType(String(name));
          const specs = keyValues(opts.extraSpecs as string[] | undefined, '--extra-specs');
          const fields: Record<string, unknown> = {};
          if (opts.name !== undefined) fields.name = opts.name;
          if (opts.description !== undefined) fields.description = opts.description;
          if (opts.public !== undefined)
            fields['share_type_access:is_public'] = parseBool(opts.public as string, '--public');
          if (!Object.keys(specs).length && !Object.keys(fields).length)
            throw new UsageError('Nothing to change: give --extra-specs, --name, --description or --public.');
          if (Object.keys(specs).length) await ctx.shares.setExtraSpecs(t.id, specs);
          if (Object.keys(fields).length) await ctx.shares.updateShareType(t.id, fields);
        }),
      ),
    [
      'abaca share type set gold --extra-specs tier=1',
      'abaca share type set gold --description "Fast disks"',
    ],
  );

  examples(
    type
      .command('unset')
      .description('Remove extra specs from a share type (admin only)')
      .argument('<share_type>', 'share type, by name or ID')
      .argument('<key...>', 'extra spec keys to remove')
      .action(
        act(async (ctx, [name, keys]) => {
          const t = await ctx.findShareType(String(name));
          for (const key of keys as string[]) await ctx.shares.deleteExtraSpec(t.id, key);
        }),
      ),
    ['abaca share type unset gold tier'],
  );

  examples(
    type
      .command('delete')
      .description('Delete share types (admin only)')
      .argument('<share_type...>', 'share types, by name or ID')
      .action(
        act(async (ctx, [names]) => {
          await deleteEach(ctx, 'share type', names as string[], async (name) => {
            await ctx.shares.deleteShareType((await ctx.findShareType(name)).id);
          });
        }),
      ),
    ['abaca share type delete gold'],
  );

  const access = type.command('access').description('Which projects may use a private share type');
  examples(
    access
      .command('create')
      .description('Allow a project to use a private share type (admin only)')
      .argument('<share_type>', 'share type, by name or ID')
      .argument('<project>', 'project, by ID (or name in the default domain)')
      .action(
        act(async (ctx, [name, project]) => {
          await ctx.shares.addShareTypeAccess((await ctx.findShareType(String(name))).id, String(project));
        }),
      ),
    ['abaca share type access create private-tier demo'],
  );
  examples(
    listOutput(
      access
        .command('list')
        .description('List the projects that may use a private share type (admin only)')
        .argument('<share_type>', 'share type, by name or ID'),
    ).action(
      act(async (ctx, [name], opts) => {
        const rows = await ctx.shares.listShareTypeAccess((await ctx.findShareType(String(name))).id);
        printList(
          opts,
          ['Project ID'],
          rows.map((r) => [r.project_id]),
        );
      }),
    ),
    ['abaca share type access list private-tier'],
  );
  examples(
    access
      .command('delete')
      .description("Take away a project's access to a private share type (admin only)")
      .argument('<share_type>', 'share type, by name or ID')
      .argument('<project>', 'project, by ID (or name in the default domain)')
      .action(
        act(async (ctx, [name, project]) => {
          await ctx.shares.removeShareTypeAccess((await ctx.findShareType(String(name))).id, String(project));
        }),
      ),
    ['abaca share type access delete private-tier demo'],
  );
}
