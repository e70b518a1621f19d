/**
 * The load generator of the HTTP benchmarks: wrk (Debian's `wrk` package) when it is installed,
 * autocannon otherwise. On a two-core machine the generator shares the cores with the server and
 * PostgreSQL; autocannon spends about as much CPU per request as the server it measures (it is
 * JavaScript, parsing every response), wrk a fraction of that — so with wrk the numbers say more
 * about the server. Every table names the generator it used.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  seconds: number;
  /** The status every response should have; others are counted as errors. */
  expect: number;
}

export interface LoadResult {
  rps: number;
  /** Latency percentiles, milliseconds. */
  p50: number;
  p99: number;
  total: number;
  /** Responses without the expected status, plus connection errors and timeouts. */
  errors: number;
}

function wrkVersion(): string | null {
  try {
    // `wrk -v` prints its version and exits 1.
    execFileSync('wrk', ['-v'], { stdio: 'pipe' });
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? '');
    const m = /wrk (\S+)/.exec(out);
    if (m) return m[1] as string;
  }
  return null;
}

const WRK = process.env.BENCH_GENERATOR === 'autocannon' ? null : wrkVersion();

/** The generator this run uses, for the tables. */
export const GENERATOR = WRK ? `wrk ${WRK}, 1 thread` : 'autocannon (install wrk for lighter load)';

// Counts the statuses wrk saw (its own summary only says "Non-2xx or 3xx") and sets the request.
const WRK_SCRIPT = `
local statuses = {}
local threads = {}
wrk.method = os.getenv("LOAD_METHOD")
local body = os.getenv("LOAD_BODY")
if body ~= "" then wrk.body = body end
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("counts")) do merged[s] = (merged[s] or 0) + n end
  end
  for s, n in pairs(merged) do io.write(string.format("status %d %d\\n", s, n)) end
  io.write(string.format("p50us %d\\np99us %d\\n", latency:percentile(50), latency:percentile(99)))
end
`;

async function runWrk(o: LoadOptions): Promise<LoadResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'abaca-wrk-'));
  const script = path.join(dir, 'load.lua');
  writeFileSync(script, WRK_SCRIPT);
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '10s', '-s', script];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('wrk', args, {
        env: { ...process.env, LOAD_METHOD: o.method ?? 'GET', LOAD_BODY: o.body ?? '' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.on('data', (d) => {
        text += d;
      });
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`)),
      );
    });
    const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    let expected = 0;
    for (const m of out.matchAll(/^status (\d+) (\d+)$/gm))
      if (Number(m[1]) === o.expect) expected += Number(m[2]);
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    const failed = socketErrors ? socketErrors.slice(1).reduce((a, n) => a + Number(n), 0) : 0;
    return {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN),
      p50: Number(/^p50us (\d+)$/m.exec(out)?.[1]) / 1000,
      p99: Number(/^p99us (\d+)$/m.exec(out)?.[1]) / 1000,
      total,
      errors: total - expected + failed,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runAutocannon(o: LoadOptions): Promise<LoadResult> {
  const r = await autocannon({
    url: o.url,
    method: o.method ?? 'GET',
    headers: o.headers,
    body: o.body,
    connections: o.connections,
    duration: o.seconds,
  });
  const ok = r.statusCodeStats?.[String(o.expect) as keyof typeof r.statusCodeStats]?.count ?? 0;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    total: r.requests.total,
    errors: r.requests.total - ok,
  };
}

/** Loads `url` for `seconds` with `connections` keep-alive connections. */
export function load(o: LoadOptions): Promise<LoadResult> {
  return WRK ? runWrk(o) : runAutocannon(o);
}
