#!/usr/bin/env node
// The CSI plugin (csi/main.ts).
import { run } from './entry.js';

await run('csi/main.ts');
