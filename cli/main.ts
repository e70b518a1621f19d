/**
 * The `abaca` entry point (bin/abaca.js). Commander parses; every failure ends here as one line on
 * stderr and an exit code (docs/cli.md): never a stack trace unless --debug.
 */
import { CommanderError } from 'commander';
import { describeError } from './describe.ts';
import { CommandError, EXIT } from './errors.ts';
import { buildProgram } from './program.ts';

/** Commander's own outcomes: help and version are success, everything else a usage error. */
function commanderExit(err: CommanderError): number {
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.OK;
  // `abaca help share` is asked for (0); `abaca share` alone prints the help as a usage error (1).
  if (err.code === 'commander.help') return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  if (err.code === 'commander.executeSubCommandAsync') return err.exitCode;
  return EXIT.USAGE;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.OK;
  } catch (err) {
    // Commander has already printed its message (or the help) to stderr.
    if (err instanceof CommanderError) return commanderExit(err);
    const { message, exitCode } = describeError(err);
    process.stderr.write(`${message}\n`);
    // Errors from commands had their stack printed where they were caught (cli/commands/common.ts).
    if (argv.includes('--debug') && !(err instanceof CommandError) && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
    return exitCode;
  }
}

/**
 * A reader that stops early (`abaca share list | head -1`) closes the pipe: the next write to
 * stdout fails with EPIPE. Not an error of the command: it ends at once and quietly, with exit code
 * 0 (the reader got what it asked for). A closed stderr only means nobody is left to read notes
 * (the detached `abaca mount` server after its parent returned): the command carries on.
 */
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.OK);
  throw err;
});
process.stderr.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

process.exitCode = await main(process.argv.slice(2));
