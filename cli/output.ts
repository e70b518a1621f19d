/**
 * cliff's formatters, as `openstack` prints: lists (`emit_list`) and single resources
 * (`emit_one`, field/value) as table, json, value, yaml, csv or shell. JSON and YAML keep the
 * values' types; the text formats render them as the Python client does (True/False/None,
 * `k='v'` for dicts). Everything here writes to stdout only.
 */
import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
import { type Command, Option } from 'commander';
import { UsageError } from './errors.ts';

// cli-table3 and yaml are loaded when a table or YAML is printed: every command starts faster.
const require = createRequire(import.meta.url);
const loadTable = () => require('cli-table3') as typeof TableType;
const toYaml = (v: unknown): string => (require('yaml') as typeof import('yaml')).stringify(v);

export const LIST_FORMATS = ['table', 'json', 'value', 'yaml', 'csv'] as const;
export const SHOW_FORMATS = ['table', 'json', 'value', 'yaml', 'shell', 'csv'] as const;
export type Format = (typeof SHOW_FORMATS)[number];

export interface FormatOptions {
  format?: Format;
  column?: string[];
  sortColumn?: string[];
  sortAscending?: boolean;
  sortDescending?: boolean;
  noindent?: boolean;
  quote?: 'all' | 'minimal' | 'none' | 'nonnumeric';
  maxWidth?: string;
  fitWidth?: boolean;
  printEmpty?: boolean;
  prefix?: string;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function addCommon(cmd: Command, formats: readonly string[]): Command {
  return cmd
    .addOption(
      new Option('-f, --format <format>', 'output format').choices(formats as string[]).default('table'),
    )
    .option('-c, --column <column>', 'show only this column (repeatable)', collect)
    .option('--noindent', 'json: print without indentation')
    .option('--max-width <width>', 'table: widest the table may be (0: no limit)')
    .option('--fit-width', 'table: fit the table to the terminal width');
}

/** Formatter options of a command that prints one resource (`show`, `create`). */
export function showOutput(cmd: Command): Command {
  return addCommon(cmd, SHOW_FORMATS).option('--prefix <prefix>', 'shell: prefix for the variable names', '');
}

/** Formatter options of a command that prints a list. */
export function listOutput(cmd: Command): Command {
  return addCommon(cmd, LIST_FORMATS)
    .option('--sort-column <column>', 'sort by this column (repeatable)', collect)
    .option('--sort-ascending', 'sort ascending (the default)')
    .option('--sort-descending', 'sort descending')
    .addOption(
      new Option('--quote <mode>', 'csv: when to quote values')
        .choices(['all', 'minimal', 'none', 'nonnumeric'])
        .default('nonnumeric'),
    )
    .option('--print-empty', 'table: print a table even when there are no rows');
}

// ---- rendering values as the Python clients do ----

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

/** osc_lib's format_dict: `a='1', b='2'`. */
function formatDict(d: Record<string, unknown>): string {
  return Object.keys(d)
    .sort()
    .map((k) => {
      const v = d[k];
      return `${k}=${isPlainObject(v) ? `{${formatDict(v)}}` : `'${scalar(v)}'`}`;
    })
    .join(', ');
}

/** A value as text: dicts as `k='v'`, lists of scalars joined by `, `, lists of dicts one per line. */
export function renderText(v: unknown): string {
  if (Array.isArray(v)) {
    if (v.every((x) => !isPlainObject(x))) return v.map(scalar).join(', ');
    return v
      .map((x) =>
        isPlainObject(x)
          ? Object.keys(x)
              .map((k) => `${k} = ${scalar(x[k])}`)
              .join('\n')
          : scalar(x),
      )
      .join('\n\n');
  }
  if (isPlainObject(v)) return formatDict(v);
  return scalar(v);
}

// ---- columns, sorting ----

function selectColumns(headers: string[], wanted: string[] | undefined): number[] {
  if (!wanted?.length) return headers.map((_, i) => i);
  const idx = headers.map((h, i) => (wanted.includes(h) ? i : -1)).filter((i) => i >= 0);
  if (!idx.length)
    throw new UsageError(
      `No recognized column names in ${wanted.map((w) => `'${w}'`).join(', ')}. Recognized columns are ${headers.map((h) => `'${h}'`).join(', ')}.`,
    );
  return idx;
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return renderText(a).localeCompare(renderText(b));
}

function sortRows(headers: string[], rows: unknown[][], opts: FormatOptions): unknown[][] {
  const keys = (opts.sortColumn ?? []).map((c) => headers.indexOf(c)).filter((i) => i >= 0);
  if (!keys.length) return rows;
  const dir = opts.sortDescending ? -1 : 1;
  return [...rows].sort((x, y) => {
    for (const k of keys) {
      const c = compare(x[k], y[k]);
      if (c !== 0) return c * dir;
    }
    return 0;
  });
}

// ---- table ----

const ASCII = {
  top: '-',
  'top-mid': '+',
  'top-left': '+',
  'top-right': '+',
  bottom: '-',
  'bottom-mid': '+',
  'bottom-left': '+',
  'bottom-right': '+',
  left: '|',
  'left-mid': '+',
  mid: '-',
  'mid-mid': '+',
  right: '|',
  'right-mid': '+',
  middle: '|',
};

function widthLimit(opts: FormatOptions): number {
  const given = opts.maxWidth !== undefined ? Number(opts.maxWidth) : 0;
  if (!Number.isInteger(given) || given < 0) throw new UsageError('--max-width must be a whole number.');
  if (given > 0) return given;
  if (opts.fitWidth && process.stdout.isTTY && process.stdout.columns) return process.stdout.columns;
  return 0;
}

/** Column widths that fit `limit`, shrinking the widest columns first (prettytable's way). */
function fitColumns(natural: number[], limit: number): number[] | null {
  // Each column costs its content + 2 padding + 1 border; plus the left border.
  const total = natural.reduce((s, w) => s + w + 3, 1);
  if (!limit || total <= limit) return null;
  const widths = [...natural];
  let excess = total - limit;
  while (excess > 0) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= 8) break;
    widths[widest]! -= 1;
    excess -= 1;
  }
  return widths.map((w) => w + 2);
}

function renderTable(
  headers: string[],
  rows: unknown[][],
  opts: FormatOptions,
  alignNumbers: boolean,
): string {
  const cells = rows.map((r) => r.map(renderText));
  const natural = headers.map((h, i) =>
    Math.max(h.length, ...cells.map((r) => Math.max(...(r[i] ?? '').split('\n').map((l) => l.length)))),
  );
  const colWidths = fitColumns(natural, widthLimit(opts));
  const Table = loadTable();
  const table = new Table({
    head: headers,
    chars: ASCII,
    style: { head: [], border: [], 'padding-left': 1, 'padding-right': 1 },
    ...(colWidths ? { colWidths, wordWrap: true, wrapOnWordBoundary: false } : {}),
    ...(alignNumbers && rows.length
      ? { colAligns: rows[0]!.map((v) => (typeof v === 'number' ? 'right' : 'left')) }
      : {}),
  });
  for (const r of cells) table.push(r);
  // cli-table3 draws a rule between every row; cliff only under the header.
  const lines = table.toString().split('\n');
  const rules = lines.map((l, i) => (l.startsWith('+') ? i : -1)).filter((i) => i >= 0);
  const keep = new Set([rules[0], rules[1], rules.at(-1)]);
  const kept = lines.filter((l, i) => !l.startsWith('+') || keep.has(i));
  // An empty table still closes under its header, as prettytable draws it.
  if (!rows.length) kept.push(lines[0]!);
  return kept.join('\n');
}

// ---- csv, shell ----

function csvField(v: unknown, mode: NonNullable<FormatOptions['quote']>): string {
  const text = renderText(v);
  const needs = /[",\n\r]/.test(text);
  const numeric = typeof v === 'number';
  const quoted = mode === 'all' || (mode === 'nonnumeric' && !numeric) || (mode === 'minimal' && needs);
  if (!quoted) return mode === 'none' ? text.replace(/([",])/g, '\\$1') : text;
  return `"${text.replaceAll('"', '""')}"`;
}

function shellQuote(v: string): string {
  return `"${v.replace(/(["\\$`])/g, '\\$1')}"`;
}

// ---- emitters ----

function write(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** A list: cliff's emit_list. JSON/YAML are arrays of objects keyed by the column headers. */
export function printList(opts: FormatOptions, headers: string[], rows: unknown[][]): void {
  const idx = selectColumns(headers, opts.column);
  const hs = idx.map((i) => headers[i]!);
  const data = sortRows(headers, rows, opts).map((r) => idx.map((i) => r[i]));
  switch (opts.format ?? 'table') {
    case 'json': {
      const items = data.map((r) => Object.fromEntries(hs.map((h, i) => [h, r[i] ?? null])));
      write(JSON.stringify(items, null, opts.noindent ? undefined : 2));
      return;
    }
    case 'yaml': {
      const items = data.map((r) => Object.fromEntries(hs.map((h, i) => [h, r[i] ?? null])));
      if (items.length) write(toYaml(items));
      else write('[]');
      return;
    }
    case 'value':
      for (const r of data) write(r.map(renderText).join(' '));
      return;
    case 'csv': {
      const mode = opts.quote ?? 'nonnumeric';
      write(
        [hs, ...data]
          .map((r, n) => r.map((v) => csvField(n === 0 ? String(v) : v, mode)).join(','))
          .join('\n'),
      );
      return;
    }
    case 'shell':
      throw new UsageError('The shell format prints one resource; use it with show or create.');
    default:
      if (!data.length && !opts.printEmpty) return;
      write(renderTable(hs, data, opts, true));
  }
}

/** One resource: cliff's emit_one, fields in the given order (callers sort as OSC does). */
export function printShow(opts: FormatOptions, record: Record<string, unknown>): void {
  const fields = Object.keys(record);
  const idx = selectColumns(fields, opts.column);
  const keys = idx.map((i) => fields[i]!);
  switch (opts.format ?? 'table') {
    case 'json':
      write(
        JSON.stringify(
          Object.fromEntries(keys.map((k) => [k, record[k] ?? null])),
          null,
          opts.noindent ? undefined : 2,
        ),
      );
      return;
    case 'yaml':
      write(toYaml(Object.fromEntries(keys.map((k) => [k, record[k] ?? null]))));
      return;
    case 'value':
      for (const k of keys) write(renderText(record[k]));
      return;
    case 'shell':
      for (const k of keys)
        write(`${opts.prefix ?? ''}${k.replace(/[^A-Za-z0-9_]/g, '_')}=${shellQuote(renderText(record[k]))}`);
      return;
    case 'csv': {
      const mode = opts.quote ?? 'nonnumeric';
      write(
        [
          keys.map((k) => csvField(k, mode)).join(','),
          keys.map((k) => csvField(record[k], mode)).join(','),
        ].join('\n'),
      );
      return;
    }
    default:
      write(
        renderTable(
          ['Field', 'Value'],
          keys.map((k) => [k, record[k]]),
          opts,
          false,
        ),
      );
  }
}

/** Keys sorted, as python-openstackclient's dict2columns shows a resource. */
export function sortedRecord(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]]),
  );
}
