/**
 * npm run bench:csi — the CSI plugin's calls through its gRPC socket against a real abaca-server in
 * solo mode (replicated backend), as the sidecars and the kubelet make them: CreateVolume of 1 GiB
 * (BENCH_CSI_VOLUMES, default 50, BENCH_CSI_CONCURRENCY at once, default 10), ControllerPublish
 * (returns once the node's access rule is active), NodeStage (returns once the FUSE mount answers;
 * root and /dev/fuse only; BENCH_CSI_STAGES of them, default 10, one at a time as a kubelet does
 * per volume), the matching unstage and unpublish, and DeleteVolume of them all. Prints p50, p95 and
 * max per call, CreateVolume one at a time as the same run's baseline, and the targets (CreateVolume p50 < 1 s, max < 10 s; publish p50 < 0.5 s).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  adminSecrets,
  connect,
  fuseSkip,
  GiB,
  MOUNT_RWX,
  startAbacaServer,
  startPlugin,
  stopPlugins,
  tempDir,
  unmountUnder,
} from '../test/csi/helpers.ts';

const VOLUMES = Number(process.env.BENCH_CSI_VOLUMES ?? 50);
const CONCURRENCY = Number(process.env.BENCH_CSI_CONCURRENCY ?? 10);
const STAGES = Math.min(VOLUMES, Number(process.env.BENCH_CSI_STAGES ?? 10));

/** Runs `fn` for each item, `limit` at a time; the milliseconds each took. */
async function timed<T>(
  items: T[],
  limit: number,
  fn: (item: T, i: number) => Promise<unknown>,
): Promise<number[]> {
  const ms: number[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) {
        const t = performance.now();
        await fn(items[i]!, i);
        ms[i] = performance.now() - t;
      }
    }),
  );
  return ms;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Row {
  call: string;
  n: number;
  at: number;
  p50: number;
  p95: number;
  max: number;
  target: string;
}

function row(call: string, ms: number[], at: number, target = ''): Row {
  const s = [...ms].sort((a, b) => a - b);
  return { call, n: s.length, at, p50: pct(s, 50), p95: pct(s, 95), max: s[s.length - 1]!, target };
}

const work = tempDir('abaca-bench-csi-');
const server = await startAbacaServer(path.join(work, 'server'));
try {
  const plugin = await startPlugin(path.join(work, 'csi.sock'), [
    '--mode',
    'all',
    '--node-id',
    'bench',
    '--node-ip',
    '127.0.0.1',
    '--log-level',
    'warn',
  ]);
  const csi = connect(plugin.socket);
  const secrets = adminSecrets(server);
  const rows: Row[] = [];
  // One call first, so the token is fetched and the code paths are warm.
  const warm = (
    await csi.controller.CreateVolume({ name: 'bench-warm', volume_capabilities: [MOUNT_RWX], secrets })
  ).volume.volume_id;
  await csi.controller.DeleteVolume({ volume_id: warm, secrets });

  /** CreateVolume of 1 GiB for each name, `limit` at a time: the times, and the ids in `ids`. */
  const createAll = (names: string[], limit: number, ids: string[]) =>
    timed(names, limit, async (name, i) => {
      ids[i] = (
        await csi.controller.CreateVolume({
          name,
          volume_capabilities: [MOUNT_RWX],
          capacity_range: { required_bytes: String(GiB) },
          secrets,
        })
      ).volume.volume_id;
    });

  // The baseline of the same run: CreateVolume one at a time, so the row below shows what ten at
  // once cost over a lone call (a queue somewhere would show as a ratio near the concurrency).
  const lone = Array.from({ length: Math.min(VOLUMES, 10) }, (_, i) => `pvc-bench-lone-${i}`);
  const loneIds: string[] = [];
  const sequential = await createAll(lone, 1, loneIds);
  await timed(loneIds, CONCURRENCY, (volume_id) => csi.controller.DeleteVolume({ volume_id, secrets }));

  const names = Array.from({ length: VOLUMES }, (_, i) => `pvc-bench-${i}`);
  const ids: string[] = [];
  const create = await createAll(names, CONCURRENCY, ids);
  rows.push(row('CreateVolume 1 GiB', create, CONCURRENCY, 'p50 < 1000, max < 10000'));
  rows.push(row('CreateVolume 1 GiB (baseline)', sequential, 1));

  const contexts: Record<string, string>[] = [];
  const publish = await timed(ids, CONCURRENCY, async (volume_id, i) => {
    contexts[i] = (
      await csi.controller.ControllerPublishVolume({
        volume_id,
        node_id: 'bench@127.0.0.1',
        volume_capability: MOUNT_RWX,
        secrets,
      })
    ).publish_context;
  });
  rows.push(row('ControllerPublishVolume (rule active)', publish, CONCURRENCY, 'p50 < 500'));

  if (!fuseSkip) {
    const staged = ids.slice(0, STAGES);
    const stagingOf = (id: string) => path.join(work, 'staging', id);
    const stage = await timed(staged, 1, async (volume_id, i) => {
      fs.mkdirSync(stagingOf(volume_id), { recursive: true });
      await csi.node.NodeStageVolume({
        volume_id,
        staging_target_path: stagingOf(volume_id),
        volume_capability: MOUNT_RWX,
        secrets,
        publish_context: contexts[i],
      });
    });
    rows.push(row('NodeStageVolume (FUSE mounted)', stage, 1));
    const unstage = await timed(staged, 1, (volume_id) =>
      csi.node.NodeUnstageVolume({ volume_id, staging_target_path: stagingOf(volume_id) }),
    );
    rows.push(row('NodeUnstageVolume', unstage, 1));
  } else {
    console.log(`NodeStageVolume not measured: ${fuseSkip}`);
  }

  const unpublish = await timed(ids, CONCURRENCY, (volume_id) =>
    csi.controller.ControllerUnpublishVolume({ volume_id, node_id: 'bench@127.0.0.1', secrets }),
  );
  rows.push(row('ControllerUnpublishVolume (rule gone)', unpublish, CONCURRENCY));
  const del = await timed(ids, CONCURRENCY, (volume_id) =>
    csi.controller.DeleteVolume({ volume_id, secrets }),
  );
  rows.push(row('DeleteVolume', del, CONCURRENCY));
  csi.close();

  const cpus = os.cpus();
  console.log(
    `\nabaca-csi over its unix socket, solo abaca-server (replicated), ${new Date().toISOString().slice(0, 10)}, ` +
      `${cpus.length}× ${cpus[0]?.model.trim()}, Node ${process.version}\n`,
  );
  const f = (n: number) => n.toFixed(0).padStart(7);
  console.log(
    `${'call'.padEnd(40)}${'n'.padStart(4)}${'at once'.padStart(9)}  p50 ms  p95 ms  max ms  target (ms)`,
  );
  for (const r of rows)
    console.log(
      `${r.call.padEnd(40)}${String(r.n).padStart(4)}${String(r.at).padStart(9)}${f(r.p50)} ${f(r.p95)} ${f(r.max)}  ${r.target}`,
    );
  const c = rows[0]!;
  const lonely = rows[1]!;
  const p = rows[2]!;
  console.log(
    `\nCreateVolume p50, ${CONCURRENCY} at once against one at a time: ${(c.p50 / lonely.p50).toFixed(2)}×`,
  );
  const met = c.p50 < 1000 && c.max < 10_000 && p.p50 < 500;
  console.log(`\ntargets ${met ? 'met' : 'NOT met'}`);
  if (!met) process.exitCode = 1;
} finally {
  unmountUnder(work);
  await stopPlugins();
  await server.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
