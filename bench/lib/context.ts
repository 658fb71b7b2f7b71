/** What every scenario is handed: the knobs, the process tracker, the results sink and a scratch directory. */
import type { ChildTracker } from './children.js';
import type { Fixture } from './fixture.js';
import type { Knobs } from './knobs.js';
import type { MachineInfo } from './proc.js';
import type { ResultsSink } from './results.js';

export interface BenchContext {
  readonly knobs: Knobs;
  readonly machine: MachineInfo;
  readonly children: ChildTracker;
  readonly sink: ResultsSink;
  /** Pools and key files; removed when the bench ends. */
  readonly workDir: string;
}

/** Scenarios that start our server also need the issuer and the files it is configured with. */
export interface ServeContext extends BenchContext {
  readonly fixture: Fixture;
}
