#!/usr/bin/env node
// One brick daemon of the replicated storage.
import { run } from './entry.js';

await run('backends/replicated/brick/brick-main.ts');
