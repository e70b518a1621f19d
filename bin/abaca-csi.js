#!/usr/bin/env node
// The CSI plugin (csi/main.ts). Runs the TypeScript sources directly through tsx, like abaca-server.
import { register } from 'tsx/esm/api';

register();
await import('../csi/main.ts');
