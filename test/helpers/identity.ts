import type { TestApp } from './app.ts';

export const V3 = '/identity/v3';
export type Method = 'get' | 'post' | 'patch' | 'put' | 'delete' | 'head';

/**
 * Request builders for the identity API tests. `app` and `defaultToken` are read at call time,
 * since tests set them in `before`; a null token sends none.
 */
export function identityRequests(app: () => TestApp, defaultToken: () => string) {
  function call(method: Method, path: string, token: string | null = defaultToken()) {
    const req = app().http()[method](`${V3}${path}`);
    return token === null ? req : req.set('X-Auth-Token', token);
  }
  function send(method: Method, path: string, body: string | object, token: string | null = defaultToken()) {
    return call(method, path, token)
      .set('Content-Type', 'application/json')
      .send(typeof body === 'string' ? body : JSON.stringify(body));
  }
  return { call, send };
}
