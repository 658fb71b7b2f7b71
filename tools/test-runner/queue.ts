/**
 * The work queue the test runner's workers share: one list of test files, written once, and a
 * claim per file made with `mkdir` (atomic on every local file system), so each file runs once,
 * in whichever worker is free first, without a coordinator process.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One test file: where it is, and the name its results are reported under. */
export interface QueuedFile {
  path: string;
  name: string;
}

/** How long each file took the last time it ran, by name, in milliseconds. */
export type Durations = Record<string, number>;

const LIST = 'files.json';
const CLAIMS = 'claims';
const TIMES = 'durations.jsonl';

/**
 * Longest first, so that no long file starts last and leaves the other workers idle; files with
 * no recorded time (new ones, or every file on a first run) go before all of them, in name order.
 */
export function orderFiles(files: readonly QueuedFile[], durations: Durations): QueuedFile[] {
  const known = (file: QueuedFile): number | undefined => {
    const ms = durations[file.name];
    return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
  };
  return [...files].sort((a, b) => {
    const ta = known(a);
    const tb = known(b);
    if (ta === undefined || tb === undefined) {
      if (ta !== tb) return ta === undefined ? -1 : 1;
      return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    }
    return tb - ta || (a.name < b.name ? -1 : 1);
  });
}

export function writeQueue(dir: string, files: readonly QueuedFile[]): void {
  mkdirSync(join(dir, CLAIMS), { recursive: true });
  writeFileSync(join(dir, LIST), JSON.stringify(files));
}

export function readQueue(dir: string): QueuedFile[] {
  return JSON.parse(readFileSync(join(dir, LIST), 'utf8')) as QueuedFile[];
}

/**
 * One worker's claims: each call gives the next file nobody has claimed, now claimed by this
 * worker; undefined when none is left. Claims are never given back, so every file before this
 * worker's last claim is taken: it goes on from there instead of trying each file again, which
 * made a run's claims grow with the square of the number of files.
 */
export function claimer(dir: string, files: readonly QueuedFile[]): () => QueuedFile | undefined {
  let next = 0;
  return () => {
    for (; next < files.length; next++) {
      try {
        mkdirSync(join(dir, CLAIMS, String(next)));
        return files[next++];
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    return undefined;
  };
}

/** One line per finished file; a single short append is atomic, so workers never interleave. */
export function recordDuration(dir: string, name: string, ms: number): void {
  appendFileSync(join(dir, TIMES), `${JSON.stringify({ name, ms: Math.round(ms) })}\n`);
}

export function readDurations(dir: string): Durations {
  let text = '';
  try {
    text = readFileSync(join(dir, TIMES), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  const durations: Durations = {};
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const { name, ms } = JSON.parse(line) as { name: string; ms: number };
    durations[name] = ms;
  }
  return durations;
}
