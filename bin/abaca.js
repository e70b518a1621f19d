#!/usr/bin/env node
// The abaca command-line client. Runs the TypeScript sources directly through tsx, like abaca-server.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
