// The same in-memory tree / write sink as client/fuse/memory-fs.ts, served through fuse-native
// 2.2.6 (libfuse2, path-based), for bench/fuse-binding.ts's comparison. fuse-native is not a
// dependency: `npm install --no-save fuse-native@2.2.6` first.
// Usage: node bench/fuse-native-server.cjs DIR [--sink] [--big-writes]
const Fuse = require('fuse-native');

const dir = process.argv[2];
const sink = process.argv.includes('--sink');
const bigWrites = process.argv.includes('--big-writes');
const CHUNK = 1024 * 1024;
const now = () => new Date();
const files = new Map([['/', { mode: 0o040777, size: 0, chunks: null, children: new Set(), mtime: now() }]]);

const parentOf = (p) => p.slice(0, p.lastIndexOf('/')) || '/';
const stat = (f) => ({
  mode: f.mode,
  size: f.size,
  uid: 0,
  gid: 0,
  nlink: 1,
  mtime: f.mtime,
  atime: f.mtime,
  ctime: f.mtime,
});
function add(p, mode) {
  const parent = files.get(parentOf(p));
  if (!parent?.children) return Fuse.ENOENT;
  if (files.has(p)) return Fuse.EEXIST;
  const dirNode = (mode & 0o170000) === 0o040000;
  files.set(p, {
    mode,
    size: 0,
    chunks: dirNode ? null : new Map(),
    children: dirNode ? new Set() : null,
    mtime: now(),
  });
  parent.children.add(p.slice(p.lastIndexOf('/') + 1));
  return 0;
}
function remove(p) {
  files.delete(p);
  files.get(parentOf(p))?.children.delete(p.slice(p.lastIndexOf('/') + 1));
}

const ops = {
  getattr: (p, cb) => (files.has(p) ? cb(0, stat(files.get(p))) : cb(Fuse.ENOENT)),
  readdir: (p, cb) => cb(0, [...(files.get(p)?.children ?? [])]),
  open: (p, _flags, cb) => cb(files.has(p) ? 0 : Fuse.ENOENT, 0),
  create: (p, mode, cb) => cb(add(p, mode), 0),
  mkdir: (p, mode, cb) => cb(add(p, 0o040000 | mode)),
  unlink: (p, cb) => cb(remove(p) ?? 0),
  rmdir: (p, cb) => cb(remove(p) ?? 0),
  release: (_p, _fd, cb) => cb(0),
  truncate: (p, size, cb) => {
    const f = files.get(p);
    if (f) f.size = size;
    cb(0);
  },
  ftruncate: (p, _fd, size, cb) => ops.truncate(p, size, cb),
  utimens: (_p, _a, _m, cb) => cb(0),
  chmod: (_p, _m, cb) => cb(0),
  statfs: (_p, cb) =>
    cb(0, {
      bsize: 4096,
      frsize: 4096,
      blocks: 1 << 24,
      bfree: 1 << 24,
      bavail: 1 << 24,
      files: 1 << 20,
      ffree: 1 << 20,
      favail: 1 << 20,
      fsid: 0,
      flag: 0,
      namemax: 255,
    }),
  write: (p, _fd, buf, len, pos, cb) => {
    const f = files.get(p);
    if (!sink) {
      for (let done = 0; done < len; ) {
        const i = Math.floor((pos + done) / CHUNK);
        const within = pos + done - i * CHUNK;
        const take = Math.min(len - done, CHUNK - within);
        let c = f.chunks.get(i);
        if (!c) {
          c = Buffer.alloc(CHUNK);
          f.chunks.set(i, c);
        }
        buf.copy(c, within, done, done + take);
        done += take;
      }
    }
    f.size = Math.max(f.size, pos + len);
    cb(len);
  },
  read: (p, _fd, buf, len, pos, cb) => {
    const f = files.get(p);
    const n = Math.max(0, Math.min(len, f.size - pos));
    for (let done = 0; !sink && done < n; ) {
      const i = Math.floor((pos + done) / CHUNK);
      const within = pos + done - i * CHUNK;
      const take = Math.min(n - done, CHUNK - within);
      f.chunks.get(i)?.copy(buf, done, within, within + take);
      done += take;
    }
    cb(n);
  },
};

// fuse-native has no option for big_writes/max_write; its fsname is pasted into the -o list unescaped.
const fsname = bigWrites ? 'fusenative,big_writes,max_write=131072' : 'fusenative';
const fuse = new Fuse(dir, ops, { allowOther: true, defaultPermissions: true, fsname });
fuse.mount((err) => {
  if (err) {
    process.stderr.write(`mount failed: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`mounted ${dir}\n`);
});
const stop = () => fuse.unmount(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
