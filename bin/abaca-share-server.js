#!/usr/bin/env node
import { register } from 'tsx/esm/api';

register();
await import('../backends/replicated/server/share-server-main.ts');
