/**
 * Preloaded into a measured server (`node --import …/crypto-count.js`): counts and times every
 * `crypto.sign` and `crypto.verify` the process makes, so a sampling profile (which can charge
 * native time to the wrong frame) is checked against the signatures actually done. SIGUSR2 appends
 * the running totals as one JSON line to BENCH_CRYPTO_COUNT_FILE; the bench reads the difference
 * over its window. Never loaded outside the bench.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';

const crypto = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
const totals = { sign: 0, verify: 0, signUs: 0, verifyUs: 0 };
const originalSign = crypto.sign;
const originalVerify = crypto.verify;

crypto.sign = ((...args: Parameters<typeof originalSign>) => {
  const t = performance.now();
  try {
    return (originalSign as (...a: unknown[]) => unknown)(...args);
  } finally {
    totals.sign++;
    totals.signUs += (performance.now() - t) * 1000;
  }
}) as typeof originalSign;
crypto.verify = ((...args: Parameters<typeof originalVerify>) => {
  const t = performance.now();
  try {
    return (originalVerify as (...a: unknown[]) => unknown)(...args);
  } finally {
    totals.verify++;
    totals.verifyUs += (performance.now() - t) * 1000;
  }
}) as typeof originalVerify;
// `import { sign } from 'node:crypto'` in the service reads these bindings.
syncBuiltinESMExports();

const file = process.env['BENCH_CRYPTO_COUNT_FILE'];
process.on('SIGUSR2', () => {
  if (file !== undefined) appendFileSync(file, `${JSON.stringify(totals)}\n`);
});
