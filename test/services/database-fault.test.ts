// The last line of defence at the edge: a PostgreSQL error that escaped the repositories becomes a
// 4xx when the client caused it and stays a 500 (undefined here) otherwise; its log line drops the
// values (services/logger.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { databaseFault } from '../../services/errors.ts';
import { serializeError } from '../../services/logger.ts';

function pgError(code: string, message = 'x', extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(message), { code, severity: 'ERROR', ...extra });
}

test('SQLSTATE → status, for the errors a client can cause', () => {
  const cases: [string, string, number | undefined][] = [
    ['23505', 'duplicate key value violates unique constraint "users_name"', 409],
    ['23503', 'insert or update on table "shares" violates foreign key constraint', 400],
    ['23503', 'update or delete on table "share_types" violates foreign key constraint', 409],
    ['23514', 'new row violates check constraint', 400],
    ['22001', 'value too long for type character varying(255)', 400],
    ['22003', 'value "9223372036854775808" is out of range for type bigint', 400],
    ['22021', 'invalid byte sequence for encoding "UTF8": 0x00', 400],
    ['22P02', 'invalid input syntax for type uuid: "abc"', 400],
    ['22007', 'invalid input syntax for type timestamp', 400],
    ['22012', 'division by zero', 400],
    ['23502', 'null value in column "name" violates not-null constraint', undefined],
    ['42P01', 'relation "x" does not exist', undefined],
    ['40001', 'could not serialize access', undefined],
    ['57014', 'canceling statement due to statement timeout', undefined],
  ];
  for (const [code, message, status] of cases)
    assert.equal(databaseFault(pgError(code, message))?.status, status, `${code} ${message}`);
});

test('not a database error: left alone (a 500 by the error middleware)', () => {
  assert.equal(databaseFault(new Error('boom')), undefined);
  assert.equal(databaseFault(Object.assign(new Error('enoent'), { code: 'ENOENT' })), undefined);
  assert.equal(databaseFault(Object.assign(new Error('no severity'), { code: '22P02' })), undefined);
  assert.equal(databaseFault(null), undefined);
});

test('the fault message never echoes the statement or its values', () => {
  const fault = databaseFault(
    pgError('22021', 'insert into "users" ("password_hash") values ($1) - invalid byte sequence'),
  );
  assert.ok(fault && !fault.message.includes('insert') && !fault.message.includes('users'), fault?.message);
});

test('a database error is logged with its kind and place, never its values', () => {
  const out = serializeError(
    pgError('23505', 'duplicate key', {
      params: ['scrypt$16384$8$1$salt$hash'],
      detail: 'Key (name)=(secret-name) already exists.',
      where: "unnamed portal parameter $1 = 'scrypt$'",
      table: 'users',
      constraint: 'users_name_unique',
      query: 'insert into users',
    }),
  ) as Record<string, unknown>;
  assert.deepEqual(Object.keys(out).sort(), [
    'code',
    'constraint',
    'message',
    'severity',
    'stack',
    'table',
    'type',
  ]);
  assert.ok(!JSON.stringify(out).includes('scrypt') && !JSON.stringify(out).includes('secret-name'));
  const other = serializeError(
    Object.assign(new Error('backend'), { shareId: 's1', params: ['x'] }),
  ) as Record<string, unknown>;
  assert.equal(other.shareId, 's1', 'other errors keep their fields');
  assert.equal(other.params, undefined, 'but never params');
});

test('a database that cannot be reached (restart, failover): 503, for the client to retry', () => {
  const unreachable: unknown[] = [
    pgError('57P01', 'terminating connection due to administrator command', { severity: 'FATAL' }),
    pgError('57P02', 'terminating connection because of crash of another server process'),
    pgError('57P03', 'the database system is shutting down', { severity: 'FATAL' }),
    pgError('57P03', 'the database system is starting up', { severity: 'FATAL' }),
    pgError('08006', 'connection failure'),
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('ROLLBACK - read ECONNRESET'), { code: 'ECONNRESET' }),
    new Error('ROLLBACK - Connection terminated unexpectedly'),
    new Error('ROLLBACK - Client has encountered a connection error and is not queryable'),
    new Error('select * from "shares" - Query read timeout'),
    new Error('timeout expired'),
    Object.assign(new Error('Knex: Timeout acquiring a connection.'), { name: 'KnexTimeoutError' }),
  ];
  for (const err of unreachable) {
    const fault = databaseFault(err);
    assert.equal(fault?.status, 503, (err as Error).message);
    assert.match(fault?.message ?? '', /retry/);
  }
  // A statement the server cancelled or could not serialize is not an outage.
  assert.equal(databaseFault(pgError('57014', 'canceling statement due to statement timeout')), undefined);
  assert.equal(databaseFault(pgError('40001', 'could not serialize access')), undefined);
});
