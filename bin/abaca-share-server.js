#!/usr/bin/env node
// The share server (coordinator) of the replicated storage.
import { run } from './entry.js';

await run('backends/replicated/server/share-server-main.ts');
