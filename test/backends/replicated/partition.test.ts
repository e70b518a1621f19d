import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');

function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `ip netns unavailable: ${r.error?.message ?? r.stderr}`;
  return undefined;
}

const skip = netnsUnavailable();

test('e) a brick cut off by a network partition (netns + veth), then rejoined, is healed', {
  skip,
}, async () => {
  const tag = `abp${process.pid % 100000}`;
  const nsA = `${tag}a`;
  const nsB = `${tag}b`;
  const vethA = `${tag}va`;
  const vethB = `${tag}vb`;
  const oct = 1 + (process.pid % 250);
  const addrA = `10.213.${oct}.1`;
  const addrB = `10.213.${oct}.2`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abaca-part-'));
  const ip = (...args: string[]): void => {
    execFileSync('ip', args, { stdio: 'pipe' });
  };
  const cleanup = (): void => {
    for (const ns of [nsA, nsB]) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    ip('link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB);
    ip('link', 'set', vethA, 'netns', nsA);
    ip('link', 'set', vethB, 'netns', nsB);
    ip('-n', nsA, 'addr', 'add', `${addrA}/30`, 'dev', vethA);
    ip('-n', nsB, 'addr', 'add', `${addrB}/30`, 'dev', vethB);
    for (const [ns, dev] of [
      [nsA, vethA],
      [nsB, vethB],
    ] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        nsA,
        process.execPath,
        '--import',
        'tsx',
        path.join(here, 'partition-scenario.ts'),
        dir,
        nsB,
        vethA,
        addrB,
      ],
      { cwd: root, encoding: 'utf8', timeout: 150_000 },
    );
    const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    let result: { ok?: boolean; error?: string; acked?: number; worstStallMs?: number } = {};
    try {
      result = JSON.parse(line);
    } catch {
      result = { ok: false, error: `no result: status ${r.status} ${r.stdout} ${r.stderr}` };
    }
    assert.ok(result.ok, result.error);
    assert.equal(result.acked, 470);
    assert.ok((result.worstStallMs ?? 0) < 10_000, `stall of ${result.worstStallMs} ms`);
  } finally {
    cleanup();
  }
});
