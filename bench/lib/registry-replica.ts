/**
 * One replica of the registry-scale scenario, forked by the bench: a RedisRegistry following the
 * registry in Redis, as the service runs it, plus a steady stream of the registry reads a Check
 * makes (issuer, tenant, service), each timed from when it was due to when it was answered — what a
 * registry change adds to concurrent Checks is the time it holds this event loop. Answers `stats`
 * messages on the IPC channel.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { connectRedis, duplicateForSubscribe } from '../../src/redis/connection.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { RegistryStore } from '../../src/registry/registry-store.js';

const [url = '', prefix = 'matryoshka', tenantsArg = '1'] = process.argv.slice(2);
const tenants = Number(tenantsArg);
const started = performance.now();
const redis = connectRedis(url);
const subscriber = duplicateForSubscribe(redis);
redis.on('error', () => undefined);
subscriber.on('error', () => undefined);
const registry = new RedisRegistry(
  new RegistryStore(redis, new RedisLayout(prefix), true),
  subscriber,
  pino({ level: 'warn' }),
  { pollIntervalMs: 1000 },
);
registry.start();
let readyMs: number | undefined;
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let lookups: number[] = [];

/** Every millisecond, the reads of one Check for a random tenant, timed from when they were due. */
function lookupLoop(): void {
  const due = performance.now();
  setTimeout(async () => {
    const i = Math.floor(Math.random() * tenants);
    await registry.issuer(`https://idp-${i}.example`).catch(() => undefined);
    await registry.tenant(`t${i}`).catch(() => undefined);
    await registry.service(`svc-${i}`).catch(() => undefined);
    lookups.push(performance.now() - due - 1);
    lookupLoop();
  }, 1);
}

const waitReady = setInterval(() => {
  if (!registry.ready()) return;
  clearInterval(waitReady);
  readyMs = performance.now() - started;
  delay.reset();
  lookupLoop();
}, 2);

process.on('message', (message: { cmd: string }) => {
  // Asked every few ms while a change propagates: answer without sorting anything.
  if (message.cmd === 'version') {
    process.send?.({ cmd: 'version', stats: { version: registry.stats().version } });
    return;
  }
  // The heap of live objects only (forked with --expose-gc): garbage of the load left out.
  if (message.cmd === 'heap') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ cmd: 'heap', heapUsedKiB: Math.round(process.memoryUsage().heapUsed / 1024) });
    return;
  }
  if (message.cmd === 'reset') {
    delay.reset();
    lookups = [];
    process.send?.({ cmd: 'reset' });
    return;
  }
  const sorted = [...lookups].sort((a, b) => a - b);
  const cpu = process.cpuUsage();
  process.send?.({
    cmd: 'stats',
    readyMs,
    rssKiB: Math.round(process.memoryUsage().rss / 1024),
    heapUsedKiB: Math.round(process.memoryUsage().heapUsed / 1024),
    cpuMicros: cpu.user + cpu.system,
    stats: registry.stats(),
    loopMaxMs: delay.max / 1e6,
    loopP99Ms: delay.percentile(99) / 1e6,
    lookupP99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
    lookupMaxMs: sorted[sorted.length - 1] ?? 0,
    lookups: sorted.length,
  });
});
