/**
 * `registry` (not in the default set: it takes about three minutes): a registry of
 * BENCH_REGISTRY_TENANTS tenants (default 50,000; each with an issuer and a service) in a private
 * redis-server, imported with the CLI, followed by two forked replicas, next to a registry of 500
 * tenants followed by a third. Reports import time, start-up time and RSS, CPU per change on a
 * replica at both sizes, the delay a stream of changes (10/s) adds to the registry reads of
 * concurrent Checks (p99 and max, against the same window without changes), and how long a change
 * takes to reach both replicas; then real gRPC Checks on a `serve` following the same registry, in
 * pairs of quiet and changing windows (bench/lib/registry-checks.ts: rows in the table, targets on
 * the median over pairs in the report). Writes bench/results/registry-scale.json.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RedisLayout } from '../../src/redis/layout.js';
import { parseTenant } from '../../src/registry/records.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { RedisServer } from '../../test/helpers/redis-server.js';
import type { BenchContext, ServeContext } from '../lib/context.js';
import { type ChecksUnderChanges, measureChecksUnderChanges } from '../lib/registry-checks.js';
import { log } from '../lib/log.js';
import { ROOT, SERVE_MAIN } from '../lib/paths.js';
import { fleetRegistryYaml } from '../../test/helpers/fleet-yaml.js';

const REPLICA = fileURLToPath(new URL('../lib/registry-replica.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ReplicaStats {
  readyMs: number | undefined;
  rssKiB: number;
  heapUsedKiB: number;
  cpuMicros: number;
  stats: { version: number; fullLoads: number; entriesApplied: number };
  loopMaxMs: number;
  loopP99Ms: number;
  lookupP99Ms: number;
  lookupMaxMs: number;
  lookups: number;
}

class Replica {
  private constructor(private readonly child: ChildProcess) {}
  static start(ctx: BenchContext, url: string, prefix: string, tenants: number): Replica {
    return new Replica(
      ctx.children.track(
        fork(REPLICA, [url, prefix, String(tenants)], {
          stdio: 'inherit',
          execArgv: ['--expose-gc'],
        }),
      ),
    );
  }
  ask(cmd: 'stats' | 'reset' | 'version' | 'heap'): Promise<ReplicaStats> {
    return new Promise((resolve) => {
      this.child.once('message', (m) => resolve(m as ReplicaStats));
      this.child.send({ cmd });
    });
  }
  async ready(): Promise<ReplicaStats> {
    for (;;) {
      const s = await this.ask('stats');
      if (s.readyMs !== undefined) return s;
      await sleep(50);
    }
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

/** `registry import FILE` with the CLI, as an operator runs it. */
function importFile(url: string, prefix: string, file: string): void {
  const result = spawnSync(process.execPath, [SERVE_MAIN, 'registry', 'import', file], {
    env: { PATH: process.env['PATH'] ?? '', REDIS_URL: url, MATRYOSHKA_REDIS_PREFIX: prefix },
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (result.status !== 0) throw new Error(`registry import failed: ${result.stderr}`);
}

/** CPU the replica spends per change: changes at `rate`/s for `seconds`, minus an idle window. */
async function cpuPerChange(
  replica: Replica,
  store: RegistryStore,
  tenants: number,
  seconds: number,
): Promise<number> {
  const idle0 = (await replica.ask('stats')).cpuMicros;
  await sleep(seconds * 1000);
  const idle = (await replica.ask('stats')).cpuMicros - idle0;
  const changes = seconds * 20;
  const busy0 = (await replica.ask('stats')).cpuMicros;
  for (let i = 0; i < changes; i++) {
    await store.putTenant(
      parseTenant(`t${(i * 7919) % tenants}`, { max_depth: 1 + (i % 8) }, 'bench'),
    );
    await sleep(50);
  }
  await sleep(200);
  const busy = (await replica.ask('stats')).cpuMicros - busy0;
  return Math.max(0, busy - idle) / changes;
}

export interface RegistryScaleFigures {
  readonly tenants: number;
  readonly importSeconds: number;
  readonly startupMs: number;
  readonly startupRssMiB: number;
  readonly heapPerTenantBytes: number;
  readonly cpuPerChangeMicros: { readonly large: number; readonly small: number };
  readonly checkDelayMs: {
    readonly quiet: { readonly p99: number; readonly max: number };
    readonly changing: { readonly p99: number; readonly max: number };
  };
  readonly propagationMs: { readonly p50: number; readonly max: number };
  readonly fullLoadsAfterChanges: number;
  /** Real gRPC Checks on a Redis-backed `serve`: quiet and under 10 changes/s (rows in the table). */
  readonly checks: ChecksUnderChanges;
}

export async function runRegistryScale(ctx: ServeContext): Promise<RegistryScaleFigures> {
  const tenants = Number(process.env['BENCH_REGISTRY_TENANTS'] ?? '50000');
  if (!Number.isSafeInteger(tenants) || tenants < 1000)
    throw new Error('BENCH_REGISTRY_TENANTS must be a whole number of at least 1000');
  const redis = await RedisServer.start();
  const replicas: Replica[] = [];
  try {
    const large = join(ctx.workDir, 'registry-large.yaml');
    const small = join(ctx.workDir, 'registry-small.yaml');
    writeFileSync(large, fleetRegistryYaml(tenants));
    writeFileSync(small, fleetRegistryYaml(500));
    const importStarted = performance.now();
    importFile(redis.url, 'large', large);
    const importSeconds = (performance.now() - importStarted) / 1000;
    importFile(redis.url, 'small', small);
    log(`registry: imported ${tenants * 3} records in ${importSeconds.toFixed(1)} s`);

    const empty = Replica.start(ctx, redis.url, 'empty', 1000);
    replicas.push(empty);
    await empty.ready();
    const emptyHeap = (await empty.ask('heap')).heapUsedKiB;
    const a = Replica.start(ctx, redis.url, 'large', tenants);
    replicas.push(a);
    const started = await a.ready();
    const b = Replica.start(ctx, redis.url, 'large', tenants);
    replicas.push(b);
    await b.ready();
    const s = Replica.start(ctx, redis.url, 'small', 500);
    replicas.push(s);
    await s.ready();
    await sleep(1000);
    const heapPerTenantBytes = (((await a.ask('heap')).heapUsedKiB - emptyHeap) * 1024) / tenants;
    log(
      `registry: replica ready in ${started.readyMs?.toFixed(0)} ms, RSS ${(started.rssKiB / 1024).toFixed(0)} MiB, heap ≈ ${heapPerTenantBytes.toFixed(0)} B per tenant (issuer + tenant + service)`,
    );

    const writer = redis.client();
    const largeStore = new RegistryStore(writer, new RedisLayout('large'), true);
    const smallStore = new RegistryStore(writer, new RedisLayout('small'), true);
    const cpuLarge = await cpuPerChange(a, largeStore, tenants, 5);
    const cpuSmall = await cpuPerChange(s, smallStore, 500, 5);
    log(
      `registry: CPU per change ${cpuLarge.toFixed(0)} µs at ${tenants} tenants, ${cpuSmall.toFixed(0)} µs at 500`,
    );

    // The same window with and without a stream of changes at 10 per second (6 s: the paired
    // Check windows after this need most of the scenario's three minutes).
    const windowMs = 6_000;
    await a.ask('reset');
    await sleep(windowMs);
    const quiet = await a.ask('stats');
    await a.ask('reset');
    const latencies: number[] = [];
    const until = performance.now() + windowMs;
    for (let i = 0; performance.now() < until; i++) {
      const t0 = performance.now();
      await largeStore.putTenant(
        parseTenant(`t${(i * 104729) % tenants}`, { max_depth: 1 + (i % 8) }, 'bench'),
      );
      const version = await largeStore.version();
      // How long until both replicas hold it (asked every few ms over IPC).
      for (;;) {
        const [sa, sb] = await Promise.all([a.ask('version'), b.ask('version')]);
        if (sa.stats.version >= version && sb.stats.version >= version) break;
        await sleep(2);
      }
      latencies.push(performance.now() - t0);
      await sleep(Math.max(0, 100 - (performance.now() - t0)));
    }
    const changing = await a.ask('stats');
    latencies.sort((x, y) => x - y);
    // The forked replicas' read loops would share the two cores with the served process.
    for (const r of replicas.splice(0)) r.stop();
    const checks = await measureChecksUnderChanges(ctx, redis.url, 'large', largeStore, tenants);
    const figures: RegistryScaleFigures = {
      tenants,
      importSeconds,
      startupMs: started.readyMs ?? Number.NaN,
      startupRssMiB: started.rssKiB / 1024,
      heapPerTenantBytes,
      cpuPerChangeMicros: { large: cpuLarge, small: cpuSmall },
      checkDelayMs: {
        quiet: { p99: quiet.lookupP99Ms, max: quiet.lookupMaxMs },
        changing: { p99: changing.lookupP99Ms, max: changing.lookupMaxMs },
      },
      propagationMs: {
        p50: latencies[Math.floor(latencies.length / 2)] ?? Number.NaN,
        max: latencies[latencies.length - 1] ?? Number.NaN,
      },
      fullLoadsAfterChanges: changing.stats.fullLoads,
      checks,
    };
    log(
      `registry: Check registry reads p99/max ${quiet.lookupP99Ms.toFixed(2)}/${quiet.lookupMaxMs.toFixed(2)} ms quiet, ${changing.lookupP99Ms.toFixed(2)}/${changing.lookupMaxMs.toFixed(2)} ms with 10 changes/s; a change on both replicas in ${figures.propagationMs.p50.toFixed(1)} ms (p50), ${figures.propagationMs.max.toFixed(1)} ms (max); full loads ${changing.stats.fullLoads}`,
    );
    writer.disconnect();
    writeFileSync(
      join(ROOT, 'bench/results/registry-scale.json'),
      `${JSON.stringify(figures, null, 2)}\n`,
    );
    return figures;
  } finally {
    for (const r of replicas) r.stop();
    await redis.dispose();
  }
}
