import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * Fields that hold secrets wherever they appear in a logged object, up to three levels deep:
 * passwords, tokens, application-credential secrets and their hashes, and the parameters of a SQL
 * statement (for identity tables those are password and secret hashes). pino replaces them with
 * "[Redacted]" before a line is written, at every level.
 */
const SECRET_KEYS = [
  'password',
  'original_password',
  'secret',
  'token',
  'password_hash',
  'secret_hash',
  'params',
  'parameters',
  'bindings',
  '"x-auth-token"',
  '"x-subject-token"',
  'authorization',
  // CSI secrets, by Manila CSI's key names, and the map that carries them.
  'secrets',
  '"os-password"',
  '"os-applicationCredentialSecret"',
];

/** A key as a path step: bracketed when quoted (`*."x-auth-token"` would match nothing). */
const step = (k: string) => (k.startsWith('"') ? `[${k}]` : `.${k}`);
export const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [
  k.startsWith('"') ? `[${k}]` : k,
  `*${step(k)}`,
  `*.*${step(k)}`,
]);

/**
 * What a database error may say in a log line: where and what kind of failure, never the values.
 * The driver attaches the statement's parameters (`params`) and PostgreSQL its `detail` (`Key
 * (name)=(…)`) and `where` (`portal parameter $4 = '…'`), which may hold secret hashes.
 */
const DB_ERROR_FIELDS = new Set([
  'type',
  'message',
  'stack',
  'code',
  'severity',
  'routine',
  'schema',
  'table',
  'column',
  'constraint',
]);
const NEVER_LOGGED = new Set([
  'params',
  'parameters',
  'bindings',
  'queryOptions',
  'detail',
  'where',
  'cause',
]);

function isDatabaseError(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown } | null;
  return typeof e?.severity === 'string' && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code);
}

/** pino's error serializer, minus what a database error must not write (see DB_ERROR_FIELDS). */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  const db = isDatabaseError(err);
  for (const k of Object.keys(out)) if (db ? !DB_ERROR_FIELDS.has(k) : NEVER_LOGGED.has(k)) delete out[k];
  return out;
}

/** The options every abaca logger is built with: server, CSI plugin and tests alike. */
export function loggerOptions(level: string, service = 'abaca-server'): LoggerOptions {
  return {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS },
    serializers: { err: serializeError },
  };
}

export function createLogger(level: string, destination?: DestinationStream, service?: string): Logger {
  return destination ? pino(loggerOptions(level, service), destination) : pino(loggerOptions(level, service));
}
