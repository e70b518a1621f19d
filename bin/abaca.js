#!/usr/bin/env node
// The abaca command-line client (cli/main.ts).
import { run } from './entry.js';

await run('cli/main.ts');
