/** Exit codes of `abaca` (docs/cli.md). */
export const EXIT = {
  OK: 0,
  /** An API error, a resource that ended in an error status, a connection or auth failure. */
  FAILURE: 1,
  /** The command line itself is wrong (unknown option, missing argument, bad value). */
  USAGE: 2,
  /** `--wait` gave up: the resource had not reached the wanted state within `--timeout`. */
  TIMEOUT: 3,
} as const;

/** A failure the CLI reports as one line on stderr, with an exit code. */
export class CommandError extends Error {
  override readonly name: string = 'CommandError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.FAILURE,
  ) {
    super(message);
  }
}

/** A mistake on the command line: exit code 2, as argparse-based clients do. */
export class UsageError extends CommandError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}
