// A restart or failover of PostgreSQL under an API call: the client gets a 503 it may retry, in
// Manila's fault shape, not a 500 (services/errors.ts databaseUnavailable).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Koa from 'koa';
import pino from 'pino';
import request from 'supertest';
import { errorHandler } from '../../api/middleware/errors.ts';

test('the error middleware answers a lost database connection with a serviceUnavailable fault', async () => {
  const app = new Koa();
  app.use(errorHandler(pino({ level: 'silent' })));
  app.use(() => {
    throw new Error('select * from "shares" - Connection terminated unexpectedly');
  });
  const res = await request(app.callback()).get('/v2/shares').expect(503);
  assert.deepEqual(res.body, {
    serviceUnavailable: {
      code: 503,
      message: 'The database cannot be reached at the moment; retry the request.',
    },
  });
});
