/** Opcodes of the native protocol (client <-> share server) and of the brick protocol. */
export const OP = {
  // client -> share server
  mount: 1,
  lookup: 2,
  getattr: 3,
  setattr: 4,
  read: 5,
  write: 6,
  create: 7,
  mkdir: 8,
  unlink: 9,
  rmdir: 10,
  rename: 11,
  readdir: 12,
  link: 13,
  symlink: 14,
  readlink: 15,
  statfs: 16,
  fsync: 17,
  ping: 18,
  // advisory locks (server/locks.ts), held per client connection
  lock: 19,
  getlk: 20,
  lockCancel: 21,
  /**
   * File ids reserved for this connection's next creates: a create that names one makes the file
   * under it, so a client can answer a create before the server has it (client/mount/share-fs.ts).
   */
  newIds: 22,
  // admin (client -> share server)
  createShare: 0x80,
  deleteShare: 0x81,
  setSize: 0x82,
  usage: 0x83,
  healInfo: 0x84,
  healNow: 0x85,
  brickStatus: 0x86,
  attachShare: 0x87,
  resolveSplitBrain: 0x88,
  registerBrick: 0x89,
  detachShare: 0x8a,
  createSnapshot: 0x8b,
  deleteSnapshot: 0x8c,
  revertToSnapshot: 0x8d,
  cloneShare: 0x8e,
  capacity: 0x8f,
  setAccess: 0x90,
  // cluster (backends/replicated/cluster.ts -> share server): who serves which share
  assignShares: 0x91,
  serverState: 0x92,
  // 0xA0–0xAF: bricks come and go (server/bricks-admin.ts)
  brickList: 0xa0,
  brickAdd: 0xa1,
  brickReplace: 0xa2,
  brickRemove: 0xa3,
  brickForget: 0xa4,
  // share server -> brick
  bHello: 0x100,
  bShareCreate: 0x101,
  bShareDelete: 0x102,
  bShareInfo: 0x103,
  bClaim: 0x104,
  bGetattr: 0x105,
  bRead: 0x106,
  bReaddir: 0x107,
  bReadlink: 0x108,
  bUsage: 0x109,
  bIndex: 0x10a,
  bMark: 0x10b,
  bClean: 0x10c,
  bClearPending: 0x10d,
  bBlockSums: 0x10e,
  bHealPut: 0x10f,
  bRemoveTree: 0x110,
  bPing: 0x111,
  bMutate: 0x112,
  bSetShareSize: 0x113,
  // 0x114–0x11f: snapshots
  bSnapCreate: 0x114,
  bSnapDelete: 0x115,
  bSnapList: 0x116,
  bSnapMaxVersion: 0x117,
  bSnapRevert: 0x118,
  bSnapClone: 0x119,
  bSnapFind: 0x11a,
  // snapshot heal (brick/snapshot-heal.ts): source walk and read, target staging and commit
  bSnapWalk: 0x11b,
  bSnapRead: 0x11c,
  bSnapHealBegin: 0x11d,
  bSnapHealPut: 0x11e,
  bSnapHealCommit: 0x11f,
  bStat: 0x120,
  bTombstoned: 0x121,
  bSetAccess: 0x122,
  /** The outcome of a mutation by request id, when this brick applied it (idempotent re-sends). */
  bRecent: 0x123,
  /**
   * mount -> brick: a read with a grant the share server handed out (protocol/read-grants.ts),
   * answered only when the brick's copy is the version the grant names.
   */
  bReadDirect: 0x124,
} as const;

export type OpName = keyof typeof OP;

/**
 * Client opcodes that change a share: refused with EROFS on a read-only rule, and sent with a
 * request id so that a re-send is applied once.
 */
export const MUTATING_CLIENT_OPS: ReadonlySet<number> = new Set<number>([
  OP.setattr,
  OP.write,
  OP.create,
  OP.mkdir,
  OP.unlink,
  OP.rmdir,
  OP.rename,
  OP.link,
  OP.symlink,
]);

/** Admin opcodes (client -> share server) all need the admin token; file operations are below. */
export const isAdminOp = (op: number): boolean => op >= 0x80 && op < 0x100;

/** Mutations a brick applies; the share server replicates each to the replica set. */
export const MUTATIONS = [
  'create',
  'mkdir',
  'symlink',
  'link',
  'unlink',
  'rmdir',
  'rename',
  'write',
  'truncate',
  'setattr',
  'fsync',
] as const;
export type MutationKind = (typeof MUTATIONS)[number];
