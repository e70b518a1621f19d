/**
 * The identity basics an operator needs so that no other tool is required: `token issue|revoke`,
 * `project create|list`, `user create|list`, `role add`, `application credential create|list|delete`.
 */
import type { Command } from 'commander';
import { ApiError, type ApplicationCredential, type Project, type User } from '../client/index.ts';
import type { Context } from '../context.ts';
import { CommandError, UsageError } from '../errors.ts';
import { listOutput, printList, printShow, showOutput, sortedRecord } from '../output.ts';
import { act, collect, deleteEach, examples, keyValues } from './common.ts';

function withoutLinks<T extends Record<string, unknown>>(o: T): Record<string, unknown> {
  const { links: _links, ...rest } = o;
  return sortedRecord(rest);
}

async function domainId(ctx: Context, domain: unknown): Promise<string | undefined> {
  return domain ? (await ctx.identity.findDomain(String(domain))).id : undefined;
}

async function currentUserId(ctx: Context): Promise<string> {
  const info = await ctx.session.auth();
  if (!info.userId)
    throw new CommandError('This token does not name a user (a static admin token?): log in as a user.');
  return info.userId;
}

/** Reads a password: without echo from a terminal, else the first line of stdin. */
async function promptPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let data = '';
    for await (const chunk of stdin) {
      data += chunk;
      if (data.includes('\n')) break;
    }
    return data.split('\n')[0]!.replace(/\r$/, '');
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          reject(new CommandError('Interrupted.', 130));
          return;
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409;
}

export function registerTokenCommands(token: Command): void {
  examples(
    showOutput(token.command('issue').description('Issue a token (the cached one while it is valid)')).action(
      act(async (ctx, _args, opts) => {
        const info = await ctx.session.auth();
        printShow(opts, {
          expires: info.expiresAt,
          id: info.token,
          project_id: info.projectId,
          user_id: info.userId,
        });
      }),
    ),
    ['abaca token issue', 'export OS_TOKEN=$(abaca token issue -f value -c id)'],
  );
  examples(
    token
      .command('revoke')
      .description('Revoke a token')
      .argument('<token>', 'the token to revoke')
      .action(
        act(async (ctx, [t]) => {
          await ctx.identity.revokeToken(String(t));
          if ((await ctx.session.auth()).token === t) ctx.session.invalidate();
        }),
      ),
    ['abaca token revoke "$OS_TOKEN"'],
  );
}

export function registerProjectCommands(project: Command): void {
  examples(
    showOutput(
      project
        .command('create')
        .description('Create a project (admin only)')
        .argument('<name>', 'project name')
        .option('--domain <domain>', 'domain that owns the project, by name or ID (default: Default)')
        .option('--description <description>', 'project description')
        .option('--enable', 'enable the project (the default)')
        .option('--disable', 'create it disabled')
        .option('--property <key=value>', 'an extra attribute (repeatable)', collect)
        .option('--or-show', 'if the project exists, show it instead of failing'),
    ).action(
      act(async (ctx, [name], opts) => {
        if (opts.enable && opts.disable) throw new UsageError('Give --enable or --disable, not both.');
        const domain_id = await domainId(ctx, opts.domain);
        let p: Project;
        try {
          p = await ctx.identity.createProject({
            ...keyValues(opts.property as string[] | undefined, '--property'),
            name: String(name),
            ...(domain_id ? { domain_id } : {}),
            ...(opts.description !== undefined ? { description: opts.description as string } : {}),
            enabled: !opts.disable,
          });
        } catch (err) {
          if (!(opts.orShow && isConflict(err))) throw err;
          p = await ctx.identity.findProject(String(name), domain_id);
        }
        printShow(opts, withoutLinks(p));
      }),
    ),
    [
      'abaca project create demo',
      'abaca project create demo --description "Demo tenant" --or-show -f value -c id',
    ],
  );
  examples(
    listOutput(
      project
        .command('list')
        .description('List projects (admin: all; others: their own)')
        .option('--domain <domain>', 'only projects in this domain')
        .option('--user <user>', 'only projects this user has a role on')
        .option('--my-projects', 'only the projects of the current user')
        .option('--long', 'also show domain, description and enabled'),
    ).action(
      act(async (ctx, _args, opts) => {
        const d = await domainId(ctx, opts.domain);
        let rows: Project[];
        if (opts.user) rows = await ctx.identity.listUserProjects(await ctx.userId(opts.user as string));
        else if (opts.myProjects) rows = await ctx.identity.listUserProjects(await currentUserId(ctx));
        else rows = await ctx.identity.listProjects(d ? { domain_id: d } : {});
        if (d) rows = rows.filter((p) => p.domain_id === d);
        const headers = opts.long ? ['ID', 'Name', 'Domain ID', 'Description', 'Enabled'] : ['ID', 'Name'];
        printList(
          opts,
          headers,
          rows.map((p) =>
            opts.long ? [p.id, p.name, p.domain_id, p.description, p.enabled] : [p.id, p.name],
          ),
        );
      }),
    ),
    ['abaca project list', 'abaca project list --long -f json'],
  );
}

export function registerUserCommands(user: Command): void {
  examples(
    showOutput(
      user
        .command('create')
        .description('Create a user (admin only)')
        .argument('<name>', 'user name')
        .option('--domain <domain>', 'domain that owns the user, by name or ID (default: Default)')
        .option('--project <project>', 'default project, by name or ID')
        .option('--project-domain <domain>', 'domain of --project, when given by name')
        .option('--password <password>', 'password (visible to other local users: prefer --password-prompt)')
        .option('--password-prompt', 'read the password from the terminal, or the first line of stdin')
        .option('--email <email>', 'email address')
        .option('--description <description>', 'user description')
        .option('--enable', 'enable the user (the default)')
        .option('--disable', 'create it disabled')
        .option('--or-show', 'if the user exists, show it instead of failing'),
    ).action(
      act(async (ctx, [name], opts) => {
        if (opts.enable && opts.disable) throw new UsageError('Give --enable or --disable, not both.');
        if (opts.password !== undefined && opts.passwordPrompt)
          throw new UsageError('Give --password or --password-prompt, not both.');
        const password = opts.passwordPrompt
          ? await promptPassword('User Password: ')
          : (opts.password as string);
        const domain_id = await domainId(ctx, opts.domain);
        const default_project_id = opts.project
          ? await ctx.projectId(opts.project as string, opts.projectDomain as string | undefined)
          : undefined;
        let u: User;
        try {
          u = await ctx.identity.createUser({
            name: String(name),
            ...(domain_id ? { domain_id } : {}),
            ...(password !== undefined ? { password } : {}),
            ...(default_project_id ? { default_project_id } : {}),
            ...(opts.email !== undefined ? { email: opts.email } : {}),
            ...(opts.description !== undefined ? { description: opts.description } : {}),
            enabled: !opts.disable,
          });
        } catch (err) {
          if (!(opts.orShow && isConflict(err))) throw err;
          u = await ctx.identity.findUser(String(name), domain_id);
        }
        printShow(opts, withoutLinks(u));
      }),
    ),
    [
      'abaca user create alice --project demo --password-prompt',
      "echo 's3cret-pass' | abaca user create alice --project demo --password-prompt -f value -c id",
    ],
  );
  examples(
    listOutput(
      user
        .command('list')
        .description('List users (admin only)')
        .option('--domain <domain>', 'only users in this domain')
        .option('--project <project>', 'only users with a role on this project')
        .option('--long', 'also show default project, domain, description, email and enabled'),
    ).action(
      act(async (ctx, _args, opts) => {
        const d = await domainId(ctx, opts.domain);
        let rows = await ctx.identity.listUsers(d ? { domain_id: d } : {});
        if (opts.project) {
          const pid = await ctx.projectId(opts.project as string);
          const assigned = await ctx.identity.listRoleAssignments({ 'scope.project.id': pid, effective: '' });
          const ids = new Set(assigned.map((a) => a.user?.id).filter(Boolean));
          rows = rows.filter((u) => ids.has(u.id));
        }
        const headers = opts.long
          ? ['ID', 'Name', 'Project', 'Domain', 'Description', 'Email', 'Enabled']
          : ['ID', 'Name'];
        printList(
          opts,
          headers,
          rows.map((u) =>
            opts.long
              ? [
                  u.id,
                  u.name,
                  u.default_project_id ?? null,
                  u.domain_id,
                  u.description ?? null,
                  u.email ?? null,
                  u.enabled,
                ]
              : [u.id, u.name],
          ),
        );
      }),
    ),
    ['abaca user list', 'abaca user list --project demo -f value -c Name'],
  );
}

export function registerRoleCommands(role: Command): void {
  examples(
    role
      .command('add')
      .description('Grant a role to a user on a project (admin only)')
      .argument('<role>', 'role, by name or ID: admin, member or reader')
      .requiredOption('--project <project>', 'project, by name or ID')
      .requiredOption('--user <user>', 'user, by name or ID')
      .option('--project-domain <domain>', 'domain of --project, when given by name')
      .option('--user-domain <domain>', 'domain of --user, when given by name')
      .action(
        act(async (ctx, [name], opts) => {
          const roleId = (await ctx.identity.findRole(String(name))).id;
          const pDomain = await domainId(ctx, opts.projectDomain);
          const projectId = (await ctx.identity.findProject(opts.project as string, pDomain)).id;
          const userId = await ctx.userId(opts.user as string, opts.userDomain as string | undefined);
          await ctx.identity.grantProjectRole(projectId, userId, roleId);
        }),
      ),
    ['abaca role add --project demo --user alice member'],
  );
}

function credentialRecord(c: ApplicationCredential): Record<string, unknown> {
  return {
    access_rules: c.access_rules ?? [],
    description: c.description,
    expires_at: c.expires_at,
    id: c.id,
    name: c.name,
    project_id: c.project_id,
    roles: (c.roles ?? []).map((r) => r.name ?? r.id),
    ...(c.secret !== undefined ? { secret: c.secret } : {}),
    unrestricted: c.unrestricted,
    user_id: c.user_id ?? null,
  };
}

export function registerApplicationCredentialCommands(cred: Command): void {
  examples(
    showOutput(
      cred
        .command('create')
        .description(
          'Create an application credential for the current user and project (the secret is shown only once)',
        )
        .argument('<name>', 'credential name')
        .option('--secret <secret>', 'secret to use (default: generated by the server)')
        .option(
          '--role <role>',
          'a role the credential carries, by name or ID (repeatable; default: all of yours)',
          collect,
        )
        .option('--expiration <time>', 'when it expires, ISO 8601 (2027-01-01T00:00:00)')
        .option('--description <description>', 'credential description')
        .option('--unrestricted', 'may also create or delete application credentials and trusts')
        .option('--restricted', 'may not (the default)'),
    ).action(
      act(async (ctx, [name], opts) => {
        if (opts.unrestricted && opts.restricted)
          throw new UsageError('Give --unrestricted or --restricted, not both.');
        const userId = await currentUserId(ctx);
        const roles = ((opts.role as string[] | undefined) ?? []).map((r) =>
          /^[0-9a-f]{32}$/.test(r) ? { id: r } : { name: r },
        );
        const c = await ctx.identity.createApplicationCredential(userId, {
          name: String(name),
          ...(opts.secret !== undefined ? { secret: opts.secret as string } : {}),
          ...(opts.description !== undefined ? { description: opts.description as string } : {}),
          ...(opts.expiration !== undefined ? { expires_at: opts.expiration as string } : {}),
          ...(roles.length ? { roles } : {}),
          ...(opts.unrestricted ? { unrestricted: true } : {}),
        });
        printShow(opts, credentialRecord(c));
      }),
    ),
    [
      'abaca application credential create csi -f json',
      'abaca application credential create ci --role member --expiration 2027-01-01T00:00:00',
    ],
  );
  examples(
    listOutput(cred.command('list').description("List the current user's application credentials")).action(
      act(async (ctx, _args, opts) => {
        const rows = await ctx.identity.listApplicationCredentials(await currentUserId(ctx));
        printList(
          opts,
          ['ID', 'Name', 'Project ID', 'Description', 'Expires At'],
          rows.map((c) => [c.id, c.name, c.project_id, c.description, c.expires_at]),
        );
      }),
    ),
    ['abaca application credential list'],
  );
  examples(
    cred
      .command('delete')
      .description('Delete application credentials of the current user (revokes their tokens)')
      .argument('<credential...>', 'credentials, by name or ID')
      .action(
        act(async (ctx, [names]) => {
          const userId = await currentUserId(ctx);
          await deleteEach(ctx, 'application credential', names as string[], async (n) => {
            const c = await ctx.identity.findApplicationCredential(userId, n);
            await ctx.identity.deleteApplicationCredential(userId, c.id);
          });
        }),
      ),
    ['abaca application credential delete ci'],
  );
}
