/**
 * `abaca mount SHARE DIR` and `abaca umount DIR`: the FUSE client of replicated shares
 * (client/mount/). The command finds the share's export location through the share API, mounts
 * it with the user's token (renewed while mounted) and serves the mount; without --foreground it
 * runs the server in a detached child and returns once the mount answers.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { MountOptions } from '../../client/mount/mount-options.ts';
import { isMountPoint } from '../../client/mount/mountinfo.ts';
import type { ShareAddress } from '../../client/mount/share-connection.ts';
import type { Context } from '../context.ts';
import { CommandError, UsageError } from '../errors.ts';
import { act, collect, examples, type Opts } from './common.ts';

/** Set in the child that serves a mount; DETACHED when its parent returns once mounted. */
const CHILD_ENV = 'ABACA_MOUNT_CHILD';
const DETACHED_ENV = 'ABACA_MOUNT_DETACHED';
const MOUNTED_LINE = 'mounted ';
/** How often the token is looked at; the session renews it in its last minute. */
const TOKEN_CHECK_MS = 30_000;

/**
 * The FUSE client and the replicated backend's protocol, loaded by `abaca mount` alone: every
 * other command starts without reading them (in the bundle they are a chunk of their own).
 */
async function mountClient() {
  const [mount, mountOptions, connection, errors] = await Promise.all([
    import('../../client/mount/mount.ts'),
    import('../../client/mount/mount-options.ts'),
    import('../../client/mount/share-connection.ts'),
    import('../../backends/replicated/protocol/errors.ts'),
  ]);
  return {
    exportLocation: mount.exportLocation,
    fuseUnavailable: mount.fuseUnavailable,
    mountShare: mount.mountShare,
    parseMountOptions: mountOptions.parseMountOptions,
    parseExportLocation: connection.parseExportLocation,
    shareAddressOf: connection.shareAddressOf,
    serversOf: connection.serversOf,
    hostPort: connection.hostPort,
    toReplicatedError: errors.toReplicatedError,
  };
}
type MountClient = Awaited<ReturnType<typeof mountClient>>;

export function registerMountCommands(program: Command): void {
  examples(
    program
      .command('mount')
      .description('Mount a share read-write with FUSE (as root); the CSI node plugin does the same')
      .argument('<share>', 'share name or ID, or its export location abaca://HOST:PORT/SHARE_ID')
      .argument('<dir>', 'directory to mount it on')
      .option('--ro', 'mount read-only')
      .option(
        '-o, --options <list>',
        "mount options, comma-separated (repeatable): ro, rw, entry_timeout=S, attr_timeout=S, timeout=S (both), retry_timeout=S, write_behind=MiB (0 or sync: off), readers=N, admin_token_file=PATH, no_direct_reads, debug; nosuid, nodev, noexec, noatime… go to the kernel; fstab's defaults, _netdev, nofail, x-… are ignored (docs/mount.md)",
        collect,
      )
      .option('--foreground', 'serve the mount in this process until it is unmounted (for supervisors)')
      .action(act(async (ctx, args, opts) => mountCommand(ctx, String(args[0]), String(args[1]), opts))),
    [
      'abaca share access create data ip 10.0.0.5 --wait && abaca mount data /mnt/data',
      'abaca mount data /mnt/data --ro -o attr_timeout=10',
      'abaca mount abaca://10.0.0.2:7400/8f1c… /mnt/data --foreground',
      'abaca umount /mnt/data',
    ],
  );
  program
    .command('umount')
    .description('Unmount a share mounted with abaca mount')
    .argument('<dir>', 'the mount point')
    .option('-l, --lazy', 'detach now even if busy; cleaned up once nothing uses it')
    .action(
      act(async (_ctx, args, opts) => {
        const dir = path.resolve(String(args[0]));
        if (!isMountPoint(dir)) throw new CommandError(`Cannot unmount ${dir}: it is not a mount point.`);
        try {
          await run('umount', opts.lazy ? ['-l', dir] : [dir]);
        } catch (err) {
          if (!/busy/i.test((err as Error).message)) throw err;
          throw new CommandError(
            `Cannot unmount ${dir}: it is busy (a process has a file or its working directory in it); ` +
              `abaca umount -l ${dir} detaches it now and finishes once nothing uses it.`,
          );
        }
      }),
    );
}

async function mountCommand(ctx: Context, share: string, dirArg: string, opts: Opts): Promise<void> {
  const lib = await mountClient();
  let options: MountOptions;
  try {
    options = lib.parseMountOptions((opts.options as string[] | undefined) ?? [], {
      readOnly: opts.ro === true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}.`);
  }
  if (opts.ro === true) options.readOnly = true;
  const dir = path.resolve(dirArg);
  const why = lib.fuseUnavailable();
  if (why) throw new CommandError(`Cannot mount ${share}: ${why}.`);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new CommandError(`Cannot mount ${share}: ${dir} is not a directory.`);
  if (isMountPoint(dir)) throw new CommandError(`Cannot mount ${share}: ${dir} is already a mount point.`);

  // --foreground serves here; otherwise a detached child serves, and this returns once it says
  // it has mounted.
  if (opts.foreground !== true && process.env[CHILD_ENV] !== '1') {
    await runDetached();
    return;
  }
  await serve(lib, ctx, share, dir, options);
}

/** Runs this same command as a detached child that serves the mount, until it has mounted. */
async function runDetached(): Promise<void> {
  const args = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
  const env = { ...process.env, [CHILD_ENV]: '1', [DETACHED_ENV]: '1' };
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env, detached: true });
  await new Promise<void>((resolve) => {
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        process.stderr.write(`${line}\n`);
        if (line.startsWith(MOUNTED_LINE)) {
          // Mounted: the child serves on alone (its later notes go nowhere).
          child.stderr!.destroy();
          child.unref();
          resolve();
          return;
        }
        nl = buf.indexOf('\n');
      }
    });
    child.on('exit', (code, sig) => {
      if (buf) process.stderr.write(buf);
      process.exit(code ?? (sig ? 1 : 0));
    });
  });
}

/** Finds the share, mounts it and serves until it is unmounted. */
async function serve(
  lib: MountClient,
  ctx: Context,
  share: string,
  dir: string,
  options: MountOptions,
): Promise<void> {
  const { exportLocation, mountShare, parseExportLocation, shareAddressOf } = lib;
  let quiet = false;
  process.stderr.on('error', () => {
    quiet = true; // the parent that relayed our notes has gone (detached mount)
  });
  const log = (msg: string) => {
    if (!quiet) process.stderr.write(`${msg}\n`);
  };
  const detached = process.env[DETACHED_ENV] === '1';

  let address: ShareAddress;
  let label = share;
  let token: (() => Promise<string | undefined>) | undefined;
  const direct = parseExportLocation(share);
  if (direct) {
    address = direct;
    // Credentials are optional with an export location: a share server without an identity
    // service, or -o admin_token_file, needs none.
    if (!options.adminTokenFile && hasCredentials(ctx)) token = async () => (await ctx.session.auth()).token;
  } else {
    const s = await ctx.findShare(share);
    label = s.name ? `${s.name} (${s.id})` : s.id;
    // Every abaca:// location of the share, the preferred first: the mount moves on to the next
    // when a share server stays away.
    const found = shareAddressOf(await ctx.shares.listExportLocations(s.id));
    if (!found)
      throw new CommandError(
        `Cannot mount ${label}: it has no abaca:// export location (status ${s.status}; only shares of the replicated backend mount with abaca mount).`,
      );
    address = found;
    if (!options.adminTokenFile) token = async () => (await ctx.session.auth()).token;
  }

  log(`connecting to ${exportLocation(address)}`);
  let mounted: Awaited<ReturnType<typeof mountShare>>;
  try {
    mounted = await mountShare({ dir, address, options, source: share, token, log });
  } catch (err) {
    throw new CommandError(`Cannot mount ${label}: ${reason(lib, err, address, share)}`);
  }

  let current = token ? await token().catch(() => undefined) : undefined;
  const renew = token
    ? setInterval(() => {
        void token()
          .then(async (t) => {
            if (t && t !== current) {
              await mounted.conn.renewToken(t);
              current = t;
              log('token renewed');
            }
          })
          .catch((err: unknown) => log(`could not renew the token: ${(err as Error).message}`));
      }, TOKEN_CHECK_MS)
    : undefined;
  renew?.unref();
  const stop = () => void mounted.unmount(true).catch(() => {});
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Counters for an operator (and the tests): where reads were served from, and lookups answered here.
  process.on('SIGUSR1', () => {
    log(mounted.directReads?.describe() ?? 'direct reads: off');
    log(`lookups answered by the mount: ${mounted.fs.lookupsAnswered}`);
  });
  log(
    `${MOUNTED_LINE}${label} at ${dir}${mounted.readOnly ? ' (read-only)' : ''}; attribute timeout ${options.attrTimeout} s`,
  );
  if (detached) quiet = true;
  await mounted.closed;
  if (renew) clearInterval(renew);
  log(`unmounted ${dir}`);
}

function hasCredentials(ctx: Context): boolean {
  try {
    void ctx.config.credentials;
    return true;
  } catch {
    return false;
  }
}

/** One line saying why a mount failed. */
function reason(lib: MountClient, err: unknown, a: ShareAddress, share: string): string {
  if (!(err instanceof Error) || !('code' in err)) return String((err as Error)?.message ?? err);
  const e = lib.toReplicatedError(err);
  const msg = e.message.replace(/^[A-Z]+: /, '');
  switch (e.code) {
    case 'EACCES':
      if (/no access rule/.test(msg)) {
        const ip = /allows (\S+)$/.exec(msg)?.[1];
        return `${msg} (add one: abaca share access create ${share} ip ${ip ?? 'ADDRESS'} --wait).`;
      }
      if (/needs an identity token/.test(msg))
        return `${msg}: give credentials (OS_* variables, OS_CLOUD or --os-* options).`;
      return `${msg}.`;
    case 'ENOTCONN':
    case 'ETIMEDOUT':
      return `cannot reach the share server at ${lib.serversOf(a).map(lib.hostPort).join(' or ')} (${msg}).`;
    case 'ENOENT':
      return `the share server at ${lib.hostPort(a)} does not have share ${a.share}.`;
    default:
      return `${msg}.`;
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new CommandError(stderr.trim() || `${cmd} exited with ${code}`)),
    );
  });
}
