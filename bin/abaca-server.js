#!/usr/bin/env node
// The API server and task worker (api/main.ts); bin/entry.js says which build of it runs.
import { run } from './entry.js';

await run('api/main.ts');
