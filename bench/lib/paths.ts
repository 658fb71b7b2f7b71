/** Where the bench finds the repository and the scripts it starts (compiled to dist/bench/lib/). */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SERVE_MAIN = join(ROOT, 'dist/src/cli/main.js');
export const LOAD_SCRIPT = fileURLToPath(new URL('../load.js', import.meta.url));
export const NOOP_SCRIPT = fileURLToPath(new URL('../noop-server.js', import.meta.url));
