/** Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by module. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  readonly file: string;
  /** Time covered by the samples kept, ms. */
  readonly sampledMs: number;
  readonly topSelf: Array<{ frame: string; selfMs: number; percent: number }>;
  readonly byModule: Array<{ module: string; selfMs: number; percent: number }>;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length);
  return url.replace(/^file:\/\//, '');
}

function moduleOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return (rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]) ?? url;
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0)
    return url
      .slice(dist + '/dist/'.length)
      .split('/')
      .slice(0, 3)
      .join('/');
  return url;
}

/**
 * `window` keeps only the samples inside it, e.g. the measured window of a scenario rather than the
 * whole life of the process. It is in µs on the profile's own clock: V8 stamps profiles with
 * CLOCK_MONOTONIC on Linux, the clock of `process.hrtime` in any process on the machine.
 */
export function summarizeProfile(
  file: string,
  top = 25,
  window?: { fromUs: number; toUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = profile.startTime;
  let kept = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window !== undefined && (t < window.fromUs || t > window.toUs)) continue;
    // A sample's weight is the interval up to the next one.
    const weight = profile.timeDeltas[i + 1] ?? delta;
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + weight);
    kept += weight;
  }
  const frames = new Map<string, number>();
  const modules = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const frame =
      `${functionName || '(anonymous)'} ${shortUrl(url)}${url ? `:${lineNumber + 1}` : ''}`.trim();
    frames.set(frame, (frames.get(frame) ?? 0) + us);
    const mod = moduleOf(url, functionName);
    modules.set(mod, (modules.get(mod) ?? 0) + us);
  }
  const rank = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({
        name,
        selfMs: us / 1000,
        percent: kept > 0 ? (100 * us) / kept : 0,
      }));
  return {
    file,
    sampledMs: kept / 1000,
    topSelf: rank(frames, top).map(({ name, selfMs, percent }) => ({
      frame: name,
      selfMs,
      percent,
    })),
    byModule: rank(modules, 15).map(({ name, selfMs, percent }) => ({
      module: name,
      selfMs,
      percent,
    })),
  };
}
