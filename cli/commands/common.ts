/** Small pieces every command module uses. */
import type { Command } from 'commander';
import type { GlobalOptions } from '../config.ts';
import { Context, type WaitFlags } from '../context.ts';
import { describeError } from '../describe.ts';
import { CommandError, EXIT, UsageError } from '../errors.ts';
import type { FormatOptions } from '../output.ts';

export type Opts = GlobalOptions & FormatOptions & WaitFlags & Record<string, unknown>;

/**
 * Wraps a command's handler: builds the Context from the options of the command and its
 * parents, and hands over the positional arguments as commander processed them.
 */
export function act(fn: (ctx: Context, args: unknown[], opts: Opts) => Promise<void>) {
  return async (...all: unknown[]): Promise<void> => {
    const cmd = all.at(-1) as Command;
    const opts = cmd.optsWithGlobals() as Opts;
    const ctx = new Context(opts);
    try {
      await fn(ctx, cmd.processedArgs, opts);
    } catch (err) {
      if (opts.debug && err instanceof Error && !(err instanceof CommandError))
        ctx.debug(err.stack ?? err.message);
      if (err instanceof CommandError) throw err;
      // Hints need the context (which setting gave the URL that failed): describe the error here.
      const d = describeError(err, ctx);
      throw new CommandError(d.message, d.exitCode);
    }
  };
}

/** Collects a repeatable option into an array. */
export const collect = (value: string, previous: string[] | undefined): string[] => [
  ...(previous ?? []),
  value,
];

/** `--property key=value` (repeatable) into a dict. */
export function keyValues(list: string[] | undefined, option: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${option} expects key=value, got '${item}'.`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** oslo's bool_from_string, strict: true/false, yes/no, on/off, 1/0 (any case). */
export function parseBool(value: string, option: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 't', 'yes', 'y', 'on', '1'].includes(v)) return true;
  if (['false', 'f', 'no', 'n', 'off', '0'].includes(v)) return false;
  throw new UsageError(`${option} must be true or false, got '${value}'.`);
}

export function parsePositiveInt(value: string, what: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new UsageError(`${what} must be a whole number ≥ 1, got '${value}'.`);
  return Number(value);
}

/** A quota value: a whole number, or -1 for unlimited. */
export function parseLimit(value: string, option: string): number {
  if (!/^-?\d+$/.test(value) || Number(value) < -1)
    throw new UsageError(`${option} must be a whole number, or -1 for unlimited; got '${value}'.`);
  return Number(value);
}

/** Adds `--wait` and `--timeout` to a command. */
export function waitOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--wait', `wait until ${what}; exit non-zero if it lands in an error status`)
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit code 3)', '900');
}

/** The help epilogue with examples. */
export function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
}

/**
 * Deletes several resources as OSC does: tries all, reports each failure on stderr, then fails
 * with the failures' exit code (1 if they differ; 3 when every failure was a --wait timeout).
 */
export async function deleteEach(
  ctx: Context,
  kind: string,
  names: string[],
  remove: (name: string) => Promise<void>,
): Promise<void> {
  const codes: number[] = [];
  for (const name of names) {
    try {
      await remove(name);
    } catch (err) {
      const d = describeError(err, ctx);
      codes.push(d.exitCode);
      ctx.warn(`Failed to delete ${kind} '${name}': ${d.message}`);
    }
  }
  if (codes.length) {
    const code = codes.every((c) => c === codes[0]) ? codes[0]! : EXIT.FAILURE;
    throw new CommandError(`${codes.length} of ${names.length} ${kind}s failed to delete.`, code);
  }
}
