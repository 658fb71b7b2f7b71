/**
 * A V8 .cpuprofile's samples within a window, each charged to the pipeline step on its stack:
 * from the sampled frame outwards, the first frame that names a step decides (so protobufjs,
 * lru-cache or a native leaf count for whoever called them). Also the time under the service's
 * own signature calls, to hold against the count the preload took (bench/lib/crypto-count.ts).
 */
import { readFileSync } from 'node:fs';

export const STEPS = [
  'decode',
  'extract',
  'verify',
  'tenant',
  'decide',
  'mint',
  'respond',
  'telemetry',
  'transport',
  'gc',
  'other',
] as const;
export type Step = (typeof STEPS)[number];

interface Frame {
  functionName: string;
  url: string;
  lineNumber?: number;
}
interface ProfileNode {
  id: number;
  callFrame: Frame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Our own modules by file (dist/src/<dir>/<file>.js), the step each belongs to; absent: transparent. */
const OWN_FILES: Record<string, Step> = {
  'server/check-request': 'decode',
  'server/check-decoder': 'decode',
  'pipeline/extract': 'extract',
  'pipeline/request-id': 'extract',
  'chain/open-chain': 'verify',
  'chain/verify-level': 'verify',
  'chain/compact': 'verify',
  'chain/auth-stack': 'verify',
  'chain/chain-memo': 'verify',
  'chain/memo-hash': 'verify',
  'chain/duplicate-keys': 'verify',
  'keys/issuer-keys': 'verify',
  'keys/remote-jwks': 'verify',
  'pipeline/resolve-tenant': 'tenant',
  'pipeline/destination': 'tenant',
  'registry/file-registry': 'tenant',
  'registry/memory-registry': 'tenant',
  'registry/redis-registry': 'tenant',
  'registry/records': 'tenant',
  'policy/decide': 'decide',
  'policy/operations': 'decide',
  'policy/glob': 'decide',
  'pipeline/check': 'decide',
  'pipeline/mint': 'mint',
  'pipeline/header-budget': 'mint',
  'chain/seal': 'mint',
  'pipeline/respond': 'respond',
  'pipeline/upstream-headers': 'respond',
  'pipeline/owned-headers': 'respond',
  'server/check-response': 'respond',
  'telemetry/audit': 'telemetry',
  'telemetry/check-span': 'telemetry',
  'telemetry/metrics': 'telemetry',
  'telemetry/logger': 'telemetry',
  'server/grpc-server': 'transport',
};

/** The step a frame names, or undefined when it only serves whoever called it. */
export function stepOfFrame(frame: Frame): Step | undefined {
  const { functionName: fn, url } = frame;
  // protobufjs's generated (de)coders: named Type$decode, Type$toObject, Type$encode, ….
  if (/\$(decode|toObject)$/.test(fn)) return 'decode';
  if (/\$(encode|fromObject)$/.test(fn)) return 'respond';
  if (url === '') {
    if (fn === '(garbage collector)') return 'gc';
    return undefined;
  }
  const dist = url.indexOf('/dist/src/');
  if (dist >= 0) {
    const file = url.slice(dist + '/dist/src/'.length).replace(/\.js$/, '');
    if (file === 'keys/jws-crypto') {
      if (fn === 'verifyJwsSignature') return 'verify';
      if (fn === 'signJws' || fn === 'compactSignJson') return 'mint';
      return undefined;
    }
    return OWN_FILES[file];
  }
  if (url.includes('/@grpc/grpc-js/')) {
    if (/deserial|decode/i.test(fn)) return 'decode';
    if (/serial|encode/i.test(fn)) return 'respond';
    return 'transport';
  }
  if (/\/node_modules\/(@opentelemetry|pino|sonic-boom|thread-stream|prom-client)/.test(url))
    return 'telemetry';
  if (url.startsWith('node:internal/http2') || url.startsWith('node:net')) return 'transport';
  return undefined;
}

export interface StepProfile {
  readonly sampledMs: number;
  /** Self time of every sample, charged to its step, ms. */
  readonly byStep: Record<Step, number>;
  /** Time of the samples under verifyJwsSignature / signJws (native crypto included), ms. */
  readonly underVerifyMs: number;
  readonly underSignMs: number;
  /** The hottest leaf frames outside the signature calls: where the rest goes. */
  readonly topLeaves: Array<{ frame: string; step: Step; ms: number }>;
}

export function stepProfile(file: string, window: { fromUs: number; toUs: number }): StepProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stepOf = new Map<number, Step>();
  const under = new Map<number, 'verify' | 'sign' | undefined>();
  const classify = (id: number): { step: Step; under: 'verify' | 'sign' | undefined } => {
    const known = stepOf.get(id);
    if (known !== undefined) return { step: known, under: under.get(id) };
    let step: Step | undefined;
    let sig: 'verify' | 'sign' | undefined;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = (byId.get(at) as ProfileNode).callFrame;
      step ??= stepOfFrame(frame);
      if (frame.url.includes('/dist/src/keys/jws-crypto')) {
        if (frame.functionName === 'verifyJwsSignature') sig ??= 'verify';
        if (frame.functionName === 'signJws') sig ??= 'sign';
      }
      if (step !== undefined && sig !== undefined) break;
    }
    const resolved = step ?? 'other';
    stepOf.set(id, resolved);
    under.set(id, sig);
    return { step: resolved, under: sig };
  };
  const byStep = Object.fromEntries(STEPS.map((s) => [s, 0])) as Record<Step, number>;
  const leaves = new Map<string, { step: Step; us: number }>();
  let underVerify = 0;
  let underSign = 0;
  let kept = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < window.fromUs || t > window.toUs) continue;
    const id = profile.samples[i] as number;
    const node = byId.get(id) as ProfileNode;
    if (node.callFrame.functionName === '(idle)') continue;
    const weight = profile.timeDeltas[i + 1] ?? delta;
    kept += weight;
    const { step, under: sig } = classify(id);
    byStep[step] += weight / 1000;
    if (sig === 'verify') underVerify += weight;
    else if (sig === 'sign') underSign += weight;
    else {
      const { functionName, url, lineNumber } = node.callFrame;
      const short = url.replace(/^.*\/(node_modules|dist)\//, '').replace(/^file:\/\//, '');
      const key =
        `${functionName || '(anonymous)'} ${short}${url ? `:${(lineNumber ?? 0) + 1}` : ''}`.trim();
      const entry = leaves.get(key) ?? { step, us: 0 };
      entry.us += weight;
      leaves.set(key, entry);
    }
  }
  return {
    sampledMs: kept / 1000,
    byStep,
    underVerifyMs: underVerify / 1000,
    underSignMs: underSign / 1000,
    topLeaves: [...leaves.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 30)
      .map(([frame, { step, us }]) => ({ frame, step, ms: us / 1000 })),
  };
}
