#!/usr/bin/env node
import { register } from 'tsx/esm/api';

register();
await import('../backends/replicated/brick/brick-main.ts');
