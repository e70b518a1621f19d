/** `abaca share access create|list|show|delete` and `abaca share export location list|show`. */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import {
  ACCESS_LEVELS,
  ACCESS_TYPES,
  type AccessRule,
  waitForAccessRule,
  waitForAccessRuleDeleted,
} from '../client/index.ts';
import { UsageError } from '../errors.ts';
import { listOutput, printList, printShow, showOutput, sortedRecord } from '../output.ts';
import { act, collect, examples, keyValues, waitOptions } from './common.ts';

/** python-manilaclient's client-side checks (manilaclient/v2/shares.py). */
export function validateAccess(type: string, to: string): void {
  if (!(ACCESS_TYPES as readonly string[]).includes(type))
    throw new UsageError(`Access type must be one of ${ACCESS_TYPES.join(', ')}; got '${type}'.`);
  if (type === 'ip') {
    const [addr, prefix, extra] = to.split('/');
    const family = isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    const okPrefix = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max);
    if (!family || !okPrefix || extra !== undefined)
      throw new UsageError(`'${to}' is not an IPv4 or IPv6 address or network (for example 10.0.0.0/24).`);
  } else if (type === 'user') {
    if (to.length < 4 || to.length > 255)
      throw new UsageError(`A user name for access must be 4 to 255 characters long; got '${to}'.`);
  } else if (type === 'cert') {
    if (to.length < 1 || to.length > 64)
      throw new UsageError('A certificate common name for access must be 1 to 64 characters long.');
  } else if (type === 'cephx') {
    if (!to || to.includes('.'))
      throw new UsageError(`A cephx id may not be empty or contain '.'; got '${to}'.`);
  }
}

function accessRecord(r: AccessRule): Record<string, unknown> {
  const { metadata, links: _links, ...rest } = r;
  return sortedRecord({ ...rest, properties: metadata ?? {} });
}

const ACCESS_HEADERS = [
  'ID',
  'Access Type',
  'Access To',
  'Access Level',
  'State',
  'Access Key',
  'Created At',
  'Updated At',
];

export function registerAccessCommands(access: Command): void {
  examples(
    showOutput(
      waitOptions(
        access
          .command('create')
          .description('Allow access to a share (add an access rule)')
          .argument('<share>', 'share, by name or ID')
          .argument('<access_type>', `access type: ${ACCESS_TYPES.join(', ')}`)
          .argument(
            '<access_to>',
            'who gets access: an IP address or network, a user name, a cephx id, a certificate CN',
          )
          .option('--access-level <level>', `access level: ${ACCESS_LEVELS.join(' or ')} (default rw)`)
          .option('--properties <key=value>', 'metadata to set on the rule (repeatable)', collect),
        'the rule is active',
      ),
    ).action(
      act(async (ctx, [name, type, to], opts) => {
        validateAccess(String(type), String(to));
        const level = opts.accessLevel as string | undefined;
        if (level !== undefined && !(ACCESS_LEVELS as readonly string[]).includes(level))
          throw new UsageError(`--access-level must be ${ACCESS_LEVELS.join(' or ')}; got '${level}'.`);
        const share = await ctx.findShare(String(name));
        const metadata = keyValues(opts.properties as string[] | undefined, '--properties');
        let rule = await ctx.shares.allowAccess(share.id, {
          access_type: String(type),
          access_to: String(to),
          ...(level ? { access_level: level } : {}),
          ...(Object.keys(metadata).length ? { metadata } : {}),
        });
        if (opts.wait) {
          const id = rule.id;
          rule =
            (await ctx.wait(`access rule ${id}`, 'active', opts, (p) =>
              waitForAccessRule(ctx.shares, id, p),
            )) ?? rule;
        }
        printShow(opts, accessRecord(rule));
      }),
    ),
    [
      'abaca share access create data ip 10.0.0.0/24 --wait',
      'abaca share access create data ip 192.168.1.5 --access-level ro --properties owner=web',
    ],
  );

  examples(
    listOutput(
      access
        .command('list')
        .description("List a share's access rules")
        .argument('<share>', 'share, by name or ID')
        .option('--properties <key=value>', 'only rules with this metadata (repeatable)', collect),
    ).action(
      act(async (ctx, [name], opts) => {
        const share = await ctx.findShare(String(name));
        const rows = await ctx.shares.listAccessRules(
          share.id,
          keyValues(opts.properties as string[] | undefined, '--properties'),
        );
        printList(
          opts,
          ACCESS_HEADERS,
          rows.map((r) => [
            r.id,
            r.access_type,
            r.access_to,
            r.access_level,
            r.state,
            r.access_key,
            r.created_at,
            r.updated_at,
          ]),
        );
      }),
    ),
    ['abaca share access list data', 'abaca share access list data -f value -c "Access To" -c State'],
  );

  examples(
    showOutput(
      access.command('show').description('Show an access rule').argument('<access_id>', 'access rule ID'),
    ).action(
      act(async (ctx, [id], opts) => {
        printShow(opts, accessRecord(await ctx.shares.getAccessRule(String(id))));
      }),
    ),
    ['abaca share access show 5e4c…'],
  );

  examples(
    waitOptions(
      access
        .command('delete')
        .description('Deny access to a share (remove an access rule)')
        .argument('<share>', 'share, by name or ID')
        .argument('<access_id>', 'access rule ID'),
      'the rule is gone',
    ).action(
      act(async (ctx, [name, id], opts) => {
        const share = await ctx.findShare(String(name));
        await ctx.shares.denyAccess(share.id, String(id));
        if (opts.wait)
          await ctx.wait(`access rule ${id}`, 'deleted', opts, (p) =>
            waitForAccessRuleDeleted(ctx.shares, String(id), p),
          );
      }),
    ),
    ['abaca share access delete data 5e4c… --wait'],
  );
}

export function registerExportLocationCommands(location: Command): void {
  examples(
    listOutput(
      location
        .command('list')
        .description("List a share's export locations (where clients mount it)")
        .argument('<share>', 'share, by name or ID'),
    ).action(
      act(async (ctx, [name], opts) => {
        const share = await ctx.findShare(String(name));
        const rows = await ctx.shares.listExportLocations(share.id);
        printList(
          opts,
          ['ID', 'Path', 'Preferred'],
          rows.map((e) => [e.id, e.path, e.preferred]),
        );
      }),
    ),
    ['abaca share export location list data', 'abaca share export location list data -f value -c Path'],
  );
  examples(
    showOutput(
      location
        .command('show')
        .description('Show one export location of a share')
        .argument('<share>', 'share, by name or ID')
        .argument('<export_location>', 'export location ID'),
    ).action(
      act(async (ctx, [name, id], opts) => {
        const share = await ctx.findShare(String(name));
        printShow(opts, sortedRecord(await ctx.shares.getExportLocation(share.id, String(id))));
      }),
    ),
    ['abaca share export location show data 0c2a…'],
  );
}
