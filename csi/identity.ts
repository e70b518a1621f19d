/** The CSI Identity service: who the plugin is, what it offers, and whether it is ready. */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../backends/replicated/processes.ts';
import type { Handlers } from './types.ts';

// From the sources or from their build in dist/: the package's own package.json.
export const VENDOR_VERSION = (
  JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }
).version;

/** CSI driver names: at most 63 characters, [a-z0-9.-], starting and ending alphanumeric. */
export function checkDriverName(name: string): string | null {
  if (name.length > 63) return 'must be at most 63 characters';
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(name))
    return 'must be lower-case letters, digits, dots and dashes, starting and ending with a letter or digit';
  return null;
}

export function createIdentity(opts: {
  driverName: string;
  controller: boolean;
  ready: () => Promise<boolean>;
}): Handlers {
  return {
    GetPluginInfo: async () => ({ name: opts.driverName, vendor_version: VENDOR_VERSION, manifest: {} }),
    GetPluginCapabilities: async () => ({
      capabilities: [
        ...(opts.controller ? [{ service: { type: 'CONTROLLER_SERVICE' } }] : []),
        { service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } },
        { volume_expansion: { type: 'ONLINE' } },
      ],
    }),
    Probe: async () => ({ ready: { value: await opts.ready() } }),
  };
}
