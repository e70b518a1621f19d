/** `-o` options of `abaca mount` (and of `mount -t abaca … -o …`), parsed and checked. */

export interface MountOptions {
  readOnly: boolean;
  /** Seconds the kernel keeps names (entry) and attributes without asking (default 1). */
  entryTimeout: number;
  attrTimeout: number;
  /** Requests served at once (concurrent reads of /dev/fuse; default 8). */
  readers: number;
  /** Seconds requests are sent again while the share server cannot be reached (default 30). */
  retryTimeout: number;
  /** MiB per file written behind (answered before the server has them; default 16, 0 = off). */
  writeBehindMiB: number;
  /** A file holding the share server's admin token (an operator's mount, not held to rules). */
  adminTokenFile?: string;
  /** Read file data from the bricks when the share server grants it (default on; `no_direct_reads`). */
  directReads: boolean;
  /** Log every FUSE request to stderr. */
  debug: boolean;
  /** Generic flags for the kernel's mount (nosuid, nodev, noexec, noatime, …), in the order given. */
  kernelFlags: string[];
  /**
   * Options mount(8) and fstab pass that mean nothing here (defaults, _netdev, noauto, comment=,
   * x-systemd.…), accepted for fstab.
   */
  ignored: string[];
}

export const DEFAULT_MOUNT_OPTIONS: MountOptions = {
  readOnly: false,
  entryTimeout: 1,
  attrTimeout: 1,
  readers: 8,
  retryTimeout: 30,
  writeBehindMiB: 16,
  directReads: true,
  debug: false,
  kernelFlags: [],
  ignored: [],
};

/** Options mount(8) and fstab add that mean nothing to the mount itself; accepted and ignored. */
const PASSED_OVER = new Set([
  'defaults',
  'auto',
  'noauto',
  'user',
  'nouser',
  'users',
  'owner',
  'group',
  '_netdev',
  'nofail',
  'async',
]);

/** Generic mount flags, given to the kernel's mount as they are (mount(8)'s FILESYSTEM-INDEPENDENT options). */
const KERNEL_FLAGS = new Set([
  'exec',
  'noexec',
  'suid',
  'nosuid',
  'dev',
  'nodev',
  'atime',
  'noatime',
  'diratime',
  'nodiratime',
  'relatime',
  'norelatime',
  'strictatime',
  'nostrictatime',
]);

function seconds(v: string | undefined, name: string, min: number): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(n) || n < min)
    throw new Error(`-o ${name}= needs a number of seconds ≥ ${min}, got '${v ?? ''}'`);
  return n;
}

/** Parses comma-separated `-o` lists (several may be given); unknown options are an error. */
export function parseMountOptions(lists: string[], base: Partial<MountOptions> = {}): MountOptions {
  const o: MountOptions = { ...DEFAULT_MOUNT_OPTIONS, ...base, kernelFlags: [], ignored: [] };
  for (const list of lists)
    for (const item of list.split(',')) {
      if (item === '') continue;
      const eq = item.indexOf('=');
      const key = eq < 0 ? item : item.slice(0, eq);
      const value = eq < 0 ? undefined : item.slice(eq + 1);
      switch (key) {
        case 'ro':
          o.readOnly = true;
          break;
        case 'rw':
          o.readOnly = false;
          break;
        case 'entry_timeout':
          o.entryTimeout = seconds(value, key, 0);
          break;
        case 'attr_timeout':
          o.attrTimeout = seconds(value, key, 0);
          break;
        case 'timeout':
          o.entryTimeout = seconds(value, key, 0);
          o.attrTimeout = o.entryTimeout;
          break;
        case 'retry_timeout':
          o.retryTimeout = seconds(value, key, 0);
          break;
        case 'write_behind': {
          const n = Number(value);
          if (value === undefined || value === '' || !Number.isInteger(n) || n < 0 || n > 1024)
            throw new Error(
              `-o write_behind= needs a whole number of MiB from 0 to 1024, got '${value ?? ''}'`,
            );
          o.writeBehindMiB = n;
          break;
        }
        case 'sync':
          o.writeBehindMiB = 0;
          break;
        case 'readers': {
          const n = Number(value);
          if (!Number.isInteger(n) || n < 1 || n > 64)
            throw new Error(`-o readers= needs a whole number from 1 to 64, got '${value ?? ''}'`);
          o.readers = n;
          break;
        }
        case 'admin_token_file':
          if (!value) throw new Error('-o admin_token_file= needs a path');
          o.adminTokenFile = value;
          break;
        case 'direct_reads':
          o.directReads = true;
          break;
        case 'no_direct_reads':
          o.directReads = false;
          break;
        case 'debug':
          o.debug = true;
          break;
        default:
          if (KERNEL_FLAGS.has(key) && value === undefined) o.kernelFlags.push(key);
          // x-…: options for userspace (systemd's x-systemd.*, x-gvfs-*); comment=: for fstab readers.
          else if (PASSED_OVER.has(key) || key.startsWith('x-') || key === 'comment') o.ignored.push(item);
          else throw new Error(`unknown mount option '${item}'`);
      }
    }
  return o;
}
