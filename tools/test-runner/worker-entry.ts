import { QUEUE_VARIABLE, runWorker } from './worker.js';

const dir = process.env[QUEUE_VARIABLE];
if (dir === undefined || dir === '') {
  process.stderr.write(
    `${QUEUE_VARIABLE} is not set: workers start through tools/test-runner/main.js\n`,
  );
  process.exitCode = 2;
} else {
  await runWorker(dir);
}
