/** The `abaca` command tree: global options, then the commands of each area. */
import { Command, Option } from 'commander';
import { registerAccessCommands, registerExportLocationCommands } from './commands/access.ts';
import { registerBrickCommands } from './commands/brick.ts';
import { examples } from './commands/common.ts';
import { registerHealCommands, registerPoolCommands } from './commands/heal.ts';
import {
  registerApplicationCredentialCommands,
  registerProjectCommands,
  registerRoleCommands,
  registerTokenCommands,
  registerUserCommands,
} from './commands/identity.ts';
import { registerMountCommands } from './commands/mount.ts';
import {
  registerAvailabilityZoneCommands,
  registerMessageCommands,
  registerServiceCommands,
} from './commands/operations.ts';
import { registerLimitsCommands, registerQuotaCommands } from './commands/quotas.ts';
import { registerShareTypeCommands } from './commands/share-types.ts';
import { registerShareCommands } from './commands/shares.ts';
import { registerSnapshotCommands } from './commands/snapshots.ts';
import { bashCompletion } from './completion.ts';
import { UsageError } from './errors.ts';

export const VERSION = '0.1.0';

const DESCRIPTION = `Command-line client for abaca, the Manila-compatible shared file system service.
Commands and options follow python-openstackclient's \`openstack share …\`.

Authentication, in order of precedence: --os-* options; the cloud named by --os-cloud / OS_CLOUD
in clouds.yaml (./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml); the
OS_* environment, as in the openrc abaca-server writes to $ABACA_DATA_DIR/openrc. Password,
application credential (OS_AUTH_TYPE=v3applicationcredential) and token (OS_TOKEN with
--os-endpoint) auth are supported. Tokens are cached per credentials until they expire, in
$XDG_CACHE_HOME/abaca (or ~/.cache/abaca), mode 0600; --no-token-cache skips the cache.

Output: commands that print take -f table|json|value|yaml|csv (shell for one resource),
-c COLUMN (repeatable), --sort-column, --noindent. Data goes to stdout only; progress and errors
go to stderr. Exit codes: 0 success, 1 failure (API error, error status, connection), 2 usage
error, 3 --wait timed out.`;

/** Global options: python-openstackclient's names and environment variables. */
const GLOBAL_OPTIONS: [string, string][] = [
  ['--os-cloud <name>', 'cloud in clouds.yaml (env OS_CLOUD)'],
  ['--os-auth-url <url>', 'Keystone v3 URL, e.g. http://127.0.0.1:8786/identity/v3 (env OS_AUTH_URL)'],
  ['--os-auth-type <type>', 'password, v3applicationcredential, token or admin_token (env OS_AUTH_TYPE)'],
  ['--os-username <name>', 'user name (env OS_USERNAME)'],
  ['--os-user-id <id>', 'user ID (env OS_USER_ID)'],
  ['--os-password <password>', 'password (env OS_PASSWORD)'],
  ['--os-project-name <name>', 'project to scope the token to (env OS_PROJECT_NAME)'],
  ['--os-project-id <id>', 'project ID to scope the token to (env OS_PROJECT_ID)'],
  ['--os-user-domain-name <name>', "user's domain name (env OS_USER_DOMAIN_NAME)"],
  ['--os-user-domain-id <id>', "user's domain ID (env OS_USER_DOMAIN_ID)"],
  ['--os-project-domain-name <name>', "project's domain name (env OS_PROJECT_DOMAIN_NAME)"],
  ['--os-project-domain-id <id>', "project's domain ID (env OS_PROJECT_DOMAIN_ID)"],
  ['--os-default-domain <id>', 'domain ID used when none is given (env OS_DEFAULT_DOMAIN; default: default)'],
  ['--os-application-credential-id <id>', 'application credential ID (env OS_APPLICATION_CREDENTIAL_ID)'],
  [
    '--os-application-credential-name <name>',
    'application credential name (env OS_APPLICATION_CREDENTIAL_NAME)',
  ],
  [
    '--os-application-credential-secret <secret>',
    'application credential secret (env OS_APPLICATION_CREDENTIAL_SECRET)',
  ],
  ['--os-token <token>', 'an existing token (env OS_TOKEN)'],
  [
    '--os-endpoint <url>',
    'share API URL, e.g. http://127.0.0.1:8786/v2, instead of the catalog (env OS_ENDPOINT)',
  ],
  ['--os-region-name <region>', 'region of the endpoints to use (env OS_REGION_NAME)'],
  ['--os-interface <interface>', 'endpoint interface: public, internal or admin (env OS_INTERFACE)'],
  ['--os-share-api-version <2.N>', 'share API microversion (env OS_SHARE_API_VERSION; default 2.72)'],
  ['--os-cacert <ca-bundle-file>', 'PEM CA certificates to verify HTTPS servers with (env OS_CACERT)'],
];

export function buildProgram(): Command {
  const program = new Command('abaca');
  // Set before any subcommand exists: commander copies these to the subcommands it creates.
  program
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false, helpWidth: 110 });
  program.version(VERSION, '--version', 'print the version and exit').description(DESCRIPTION);
  for (const [flags, help] of GLOBAL_OPTIONS) program.addOption(new Option(flags, help));
  program
    .option('--insecure', 'do not verify HTTPS certificates (env OS_INSECURE); for tests only')
    .option('--no-token-cache', 'neither read nor write the token cache')
    .option('--http-timeout <seconds>', 'timeout of each HTTP request (default 60)')
    .option('--debug', 'print each HTTP request and, on failure, the stack trace to stderr');
  examples(program, [
    'source data/openrc && abaca share list',
    'abaca share type create gold false --snapshot-support true',
    'abaca share create NFS 1 --name data --share-type gold --wait',
    'abaca share access create data ip 10.0.0.0/24 --wait',
    'abaca share show data -f json',
    'OS_CLOUD=abaca abaca share snapshot create data --name nightly --wait',
    'abaca --os-token "$ABACA_ADMIN_TOKEN" --os-endpoint http://127.0.0.1:8786/v2 share service list',
    'source <(abaca completion bash)',
  ]);

  const share = program.command('share').description('Shares and everything about them');
  registerShareCommands(share);
  registerSnapshotCommands(share.command('snapshot').description('Share snapshots'));
  registerShareTypeCommands(share.command('type').description('Share types (admin: create and change)'));
  registerAccessCommands(share.command('access').description('Share access rules'));
  registerExportLocationCommands(
    share
      .command('export')
      .description('Share export locations')
      .command('location')
      .description('Share export locations'),
  );
  registerQuotaCommands(share.command('quota').description('Share quotas of a project'));
  registerLimitsCommands(share.command('limits').description("The token's project limits"));
  registerAvailabilityZoneCommands(
    share
      .command('availability')
      .description('Availability zones')
      .command('zone')
      .description('Availability zones'),
  );
  registerServiceCommands(share.command('service').description('Share services (admin only)'));
  registerHealCommands(share.command('heal').description('Self-heal of replicated shares (admin only)'));
  registerPoolCommands(share.command('pool').description('Storage pools (admin only)'));
  registerMessageCommands(share.command('message').description('User messages: why an operation failed'));

  registerBrickCommands(program.command('brick').description('Bricks of replicated backends (admin only)'));
  registerMountCommands(program);
  registerTokenCommands(program.command('token').description('Identity tokens'));
  registerProjectCommands(program.command('project').description('Identity projects'));
  registerUserCommands(program.command('user').description('Identity users'));
  registerRoleCommands(program.command('role').description('Identity role assignments'));
  registerApplicationCredentialCommands(
    program
      .command('application')
      .description('Application credentials')
      .command('credential')
      .description('Application credentials: secrets for automation (the CSI plugin, CI)'),
  );

  examples(
    program
      .command('completion')
      .description('Print a shell completion script')
      .argument('<shell>', 'bash')
      .action((shell: string) => {
        if (shell !== 'bash')
          throw new UsageError(
            `Completion is available for bash only (zsh: autoload bashcompinit && bashcompinit).`,
          );
        process.stdout.write(bashCompletion(program));
      }),
    ['source <(abaca completion bash)', 'abaca completion bash > /etc/bash_completion.d/abaca'],
  );
  return program;
}
