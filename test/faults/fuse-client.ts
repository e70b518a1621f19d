/**
 * A FUSE-mount client of the fault-injection run, in a process of its own (forked by run.ts with
 * IPC). Its own process because open files on a FUSE mount are inherited by every child a process
 * spawns and flushed when the child execs: had the nemesis' process files open on a mount whose
 * share server it is restarting, the restart's exec would wait for that flush, which waits for the
 * share server (up to the mount's retry_timeout).
 *   argv: JSON {name, share, dir, seed, timeoutMs, t0, end}
 * Runs until `end` (epoch ms) or a "stop" message, then sends its ClientReport and exits.
 */
import { Client, History, mountOps, reportOf } from './workload.ts';

const a = JSON.parse(process.argv[2]!) as {
  name: string;
  share: string;
  dir: string;
  seed: number;
  timeoutMs: number;
  t0: number;
  end: number;
};
const h = new History(a.t0);
const c = new Client(a.name, a.share, mountOps(a.dir), h, a.seed, a.timeoutMs);
let stop = false;
process.on('message', (m) => {
  if (m === 'stop') stop = true;
});
process.on('disconnect', () => process.exit(1));
await c.run(() => !stop && Date.now() < a.end);
process.send!(reportOf(c, h), () => process.exit(0));
