import { EXIT_GRACE_VARIABLE, QUEUE_VARIABLE, runWorker } from './worker.js';

const dir = process.env[QUEUE_VARIABLE];
if (dir === undefined || dir === '') {
  process.stderr.write(
    `${QUEUE_VARIABLE} is not set: workers start through tools/test-runner/main.js\n`,
  );
  process.exitCode = 2;
} else {
  const last = await runWorker(dir);
  // A file that leaves a timer or a socket behind would keep this worker, and so the whole run,
  // alive for ever: after a grace period the worker fails instead, saying what is still open.
  const graceMs = Number(process.env[EXIT_GRACE_VARIABLE] || 10_000);
  setTimeout(() => {
    process.stderr.write(
      `test worker: still running ${graceMs} ms after its last file (${last ?? 'none'}): ${process.getActiveResourcesInfo().join(', ')}\n`,
    );
    process.exit(1);
  }, graceMs).unref();
}
