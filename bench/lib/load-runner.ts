/** Runs of the load generator (bench/load.ts, forked): one per measured window. */
import { fork } from 'node:child_process';
import type { BenchContext } from './context.js';
import { quickFloor } from './floor.js';
import type { LoadConfig, LoadResult, LoadSource } from './load-types.js';
import { log } from './log.js';
import { LOAD_SCRIPT } from './paths.js';
import { machineJiffies } from './proc.js';
import type { RunningServer } from './servers.js';

/**
 * On a shared machine, wait (up to BENCH_QUIET_WAIT_S) until other work takes under 0.3 cores before
 * a measured run starts: at that moment nothing of ours is busy, so whatever is, is someone else.
 */
async function waitForQuiet(ctx: BenchContext, label: string): Promise<void> {
  const deadline = Date.now() + ctx.knobs.quietWaitMs;
  let said = false;
  for (;;) {
    const a = machineJiffies();
    await new Promise((r) => setTimeout(r, 500));
    const b = machineJiffies();
    const busyCores =
      b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * ctx.machine.nproc : 0;
    if (busyCores < 0.3) return;
    if (Date.now() > deadline) {
      log(
        `${label}: the machine is still busy (${busyCores.toFixed(2)} cores of other work); measuring anyway`,
      );
      return;
    }
    if (!said)
      log(
        `${label}: waiting for the machine to quieten (${busyCores.toFixed(2)} cores busy with other work)`,
      );
    said = true;
  }
}

export async function runLoad(ctx: BenchContext, config: LoadConfig): Promise<LoadResult> {
  await waitForQuiet(ctx, config.label);
  const child = ctx.children.track(
    fork(LOAD_SCRIPT, [JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    }),
  );
  const limitMs =
    config.warmupMs + (config.maxRequests !== undefined ? 600_000 : config.durationMs) + 60_000;
  return await new Promise<LoadResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`load generator (${config.label}) did not finish within ${limitMs / 1000} s`),
      );
    }, limitMs);
    let settled = false;
    child.on('message', (message: { ok: boolean; result?: LoadResult; error?: string }) => {
      settled = true;
      clearTimeout(timer);
      if (message.ok && message.result !== undefined) resolve(message.result);
      else reject(new Error(`load generator (${config.label}): ${message.error ?? 'failed'}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!settled) reject(new Error(`load generator (${config.label}) exited with ${code}`));
    });
  });
}

/** The load generator's settings for one run against `server`: the knobs, unless `extra` says otherwise. */
export function generatorConfig(
  ctx: BenchContext,
  label: string,
  server: RunningServer,
  source: LoadSource,
  extra: Partial<LoadConfig> = {},
): LoadConfig {
  const { knobs } = ctx;
  return {
    label,
    target: server.address,
    serverPid: server.pid,
    source,
    concurrency: knobs.concurrency,
    sessions: knobs.sessions,
    streamWindow: knobs.streamWindow,
    sessionWindow: knobs.sessionWindow,
    timeoutMs: knobs.timeoutMs,
    warmupMs: knobs.warmupMs,
    durationMs: knobs.durationMs,
    sampleEvery: 97,
    ...extra,
  };
}

/** A run with a quick crypto floor taken right before and right after it (mean of the two). */
export async function runLoadBesideFloor(
  ctx: BenchContext,
  config: LoadConfig,
): Promise<{ load: LoadResult; floorNear: number }> {
  const before = quickFloor();
  const load = await runLoad(ctx, config);
  return { load, floorNear: (before + quickFloor()) / 2 };
}
