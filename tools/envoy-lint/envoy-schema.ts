/**
 * A strict lint for Envoy v3 configuration, against Envoy's own API protos.
 *
 * `@grpc/grpc-js-xds` ships a snapshot of envoyproxy/data-plane-api (plus cncf/xds, protoc-gen-validate
 * and googleapis) under `deps/`. We load every v3 .proto it bundles whose imports it also bundles,
 * with protobufjs and `keepCase` (proto field names, as Envoy's YAML uses), and walk a parsed YAML
 * document against a message type the way Envoy's loader does (YAML → JSON → proto3 JSON mapping):
 *
 * - a key must be a field of the message (proto name or its lowerCamel JSON name), once;
 * - scalars must have the proto3 JSON type (a `string` field takes no number: `"4"`, not `4`),
 *   enums a defined (non-deprecated) name, repeated fields a list, maps an object;
 * - well-known types take their JSON forms: Duration `"0.25s"`, wrappers a bare scalar, Struct and
 *   Value free-form, Timestamp RFC 3339, Any `{"@type": …}`;
 * - every `google.protobuf.Any` (`typed_config`, `typed_extension_protocol_options`, …) is resolved
 *   by its `@type` to a bundled v3 message and validated in turn; an unknown type is a problem, and
 *   so is a `TypedStruct` whose `type_url` is unknown;
 * - at most one member of a oneof; deprecated fields and enum values are problems (a config meant
 *   to be copied should not start out deprecated);
 * - the protoc-gen-validate rules Envoy enforces at load (required messages and oneofs, string
 *   lengths, numeric and duration bounds, list sizes…) are checked, on unset scalars too, as PGV does.
 *
 * Stricter than Envoy on one point: a YAML `null` (an empty key) is reported, except where a
 * `google.protobuf.Value` is expected. Plain YAML scalars that Envoy's YAML reader (yaml-cpp) takes
 * for booleans but YAML 1.2 reads as strings (`on`, `off`, `yes`, `no`, `y`, `n`) are reported too.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import protobuf from 'protobufjs';
import { isPair, isScalar, isSeq, parseDocument, visit } from 'yaml';

export interface SchemaProblem {
  /** JSON path into the document, e.g. `$.static_resources.clusters[0].connect_timeout`. */
  readonly path: string;
  readonly message: string;
}

export interface EnvoySchema {
  readonly root: protobuf.Root;
  /** Version of `@grpc/grpc-js-xds` the protos come from. */
  readonly packageVersion: string;
  /** The include directories, in lookup order. */
  readonly includeDirs: readonly string[];
  /** Entry files loaded (relative to their include dir); their imports come on top. */
  readonly entryFiles: readonly string[];
  /** Bundled v3 protos skipped because an import they need is not bundled (e.g. opencensus). */
  readonly skippedFiles: readonly string[];
}

export interface ValidationResult {
  readonly problems: SchemaProblem[];
  /** Full names (no leading dot) of every message type the walk validated, `Any` payloads included. */
  readonly typesSeen: ReadonlySet<string>;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const require = createRequire(import.meta.url);

/** Imports protobufjs serves from memory (its `common` definitions). */
const BUNDLED_WKT = new Set(
  ['any', 'duration', 'empty', 'field_mask', 'struct', 'timestamp', 'wrappers'].map(
    (n) => `google/protobuf/${n}.proto`,
  ),
);

function listProtos(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listProtos(path));
    else if (entry.name.endsWith('.proto')) out.push(path);
  }
  return out;
}

const toPosix = (path: string): string => path.split(sep).join('/');

let cached: EnvoySchema | undefined;

/** Load (once per process) Envoy's v3 API from the protos bundled in `@grpc/grpc-js-xds`. */
export function loadEnvoySchema(): EnvoySchema {
  if (cached !== undefined) return cached;
  const xdsPackageJson = require.resolve('@grpc/grpc-js-xds/package.json');
  const xdsDir = dirname(xdsPackageJson);
  const packageVersion = (JSON.parse(readFileSync(xdsPackageJson, 'utf8')) as { version: string })
    .version;
  const deps = join(xdsDir, 'deps');
  const envoyApi = join(deps, 'envoy-api');
  const cncfXds = join(deps, 'xds');
  // google/protobuf/descriptor.proto (for the custom options) comes with protobufjs itself.
  const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));
  const includeDirs = [
    envoyApi,
    cncfXds,
    join(deps, 'protoc-gen-validate'),
    join(deps, 'googleapis'),
    protobufjsDir,
  ];
  for (const dir of includeDirs)
    if (!existsSync(dir))
      throw new Error(`@grpc/grpc-js-xds ${packageVersion}: proto include dir ${dir} is missing`);

  const locate = (target: string): string | undefined => {
    for (const dir of includeDirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return undefined;
  };
  const importsOf = new Map<string, string[]>();
  const imports = (file: string, source: string): string[] => {
    let found = importsOf.get(file);
    if (found === undefined) {
      found = [
        ...readFileSync(source, 'utf8').matchAll(
          /^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm,
        ),
      ].map((m) => m[1] ?? '');
      importsOf.set(file, found);
    }
    return found;
  };
  const loadable = new Map<string, boolean>();
  const canLoad = (file: string, visiting = new Set<string>()): boolean => {
    if (BUNDLED_WKT.has(file)) return true;
    const known = loadable.get(file);
    if (known !== undefined) return known;
    if (visiting.has(file)) return true; // a cycle: decided by the first visit
    visiting.add(file);
    const source = locate(file);
    const ok = source !== undefined && imports(file, source).every((dep) => canLoad(dep, visiting));
    loadable.set(file, ok);
    return ok;
  };

  // Entry points: Envoy's v3 API (every path with a v3… version segment) and its annotations, and
  // cncf/xds (xds.type.v3.TypedStruct, udpa.type.v1.TypedStruct, matchers). The v2 API, removed
  // from Envoy, is not an entry point: its types cannot be named by an `@type`.
  const candidates = [
    ...listProtos(join(envoyApi, 'envoy'))
      .map((f) => toPosix(relative(envoyApi, f)))
      .filter((f) => /\/v3[a-z0-9]*\//.test(f) || f.startsWith('envoy/annotations/')),
    ...listProtos(cncfXds).map((f) => toPosix(relative(cncfXds, f))),
  ].sort();
  const entryFiles = candidates.filter((f) => canLoad(f));
  const skippedFiles = candidates.filter((f) => !canLoad(f));

  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    BUNDLED_WKT.has(target) ? target : (locate(target) ?? target);
  root.loadSync(
    entryFiles.map((f) => locate(f) ?? f),
    { keepCase: true },
  );
  root.resolveAll();
  cached = { root, packageVersion, includeDirs, entryFiles, skippedFiles };
  return cached;
}

// ---------------------------------------------------------------------------------------------
// paths and small helpers

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
    ? `${path}.${key}`
    : `${path}[${JSON.stringify(key)}]`;
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** protoc's lowerCamel JSON name of a proto field name. */
function jsonName(field: protobuf.Field): string {
  const explicit = field.options?.['json_name'] as unknown;
  if (typeof explicit === 'string') return explicit;
  return field.name.replace(/_+([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(
        above + 1,
        (row[j - 1] ?? 0) + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

function suggestion(key: string, type: protobuf.Type): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const field of type.fieldsArray) {
    for (const name of [field.name, jsonName(field)]) {
      const d = editDistance(key.toLowerCase(), name.toLowerCase());
      if (d < bestDistance) {
        bestDistance = d;
        best = field.name;
      }
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 4))
    ? ` (did you mean "${best}"?)`
    : '';
}

const typeName = (type: protobuf.ReflectionObject): string => type.fullName.replace(/^\./, '');

// ---------------------------------------------------------------------------------------------
// scalars

const INT_LIMITS: Record<string, readonly [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

/** A scalar checked against its proto3 JSON form: the normalized value, or a reason it is not one. */
type Scalar =
  | { ok: true; value: number | string | boolean; bytes?: number }
  | { ok: false; reason: string };

function scalar(kind: string, value: Json): Scalar {
  const limits = INT_LIMITS[kind];
  if (limits !== undefined) {
    let big: bigint | undefined;
    if (typeof value === 'number' && Number.isInteger(value)) big = BigInt(value);
    else if (typeof value === 'string' && /^-?\d+$/.test(value)) big = BigInt(value);
    if (big === undefined)
      return { ok: false, reason: `expected an integer (${kind}), got ${describe(value)}` };
    if (big < limits[0] || big > limits[1])
      return { ok: false, reason: `${String(big)} is out of range for ${kind}` };
    return { ok: true, value: Number(big) };
  }
  switch (kind) {
    case 'double':
    case 'float':
      if (typeof value === 'number') return { ok: true, value };
      if (
        typeof value === 'string' &&
        (/^(NaN|-?Infinity)$/.test(value) ||
          (value.trim() !== '' && Number.isFinite(Number(value))))
      ) {
        return { ok: true, value: Number(value) };
      }
      return { ok: false, reason: `expected a number (${kind}), got ${describe(value)}` };
    case 'bool':
      return typeof value === 'boolean'
        ? { ok: true, value }
        : { ok: false, reason: `expected true or false, got ${describe(value)}` };
    case 'string':
      return typeof value === 'string'
        ? { ok: true, value }
        : { ok: false, reason: `expected a string, got ${describe(value)} (quote it in YAML)` };
    case 'bytes':
      if (typeof value === 'string' && /^[A-Za-z0-9+/\-_]*={0,2}$/.test(value)) {
        return {
          ok: true,
          value,
          bytes: Buffer.from(
            value,
            value.includes('-') || value.includes('_') ? 'base64url' : 'base64',
          ).length,
        };
      }
      return { ok: false, reason: `expected base64 bytes, got ${describe(value)}` };
    default:
      return { ok: false, reason: `unsupported scalar type ${kind}` };
  }
}

const WRAPPERS: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const MAX_DURATION_SECONDS = 315_576_000_000;

/** Seconds in a proto3 JSON Duration (`"0.25s"`), or undefined when it is not one. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = DURATION.exec(value);
  if (m === null) return undefined;
  const seconds = Number(m[2]) + Number(`0.${m[3] ?? '0'}`);
  if (Number(m[2]) > MAX_DURATION_SECONDS) return undefined;
  return m[1] === '-' ? -seconds : seconds;
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const TYPED_STRUCTS = new Set(['xds.type.v3.TypedStruct', 'udpa.type.v1.TypedStruct']);

// ---------------------------------------------------------------------------------------------
// protoc-gen-validate rules

type Rules = Record<string, unknown>;

function deepMerge(into: Rules, from: Rules): Rules {
  for (const [key, value] of Object.entries(from)) {
    const existing = into[key];
    if (isRules(existing) && isRules(value)) deepMerge(existing, value);
    else into[key] = isRules(value) ? deepMerge({}, value) : value;
  }
  return into;
}
const isRules = (value: unknown): value is Rules =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function rulesOf(object: protobuf.ReflectionObject): Rules | undefined {
  const parsed = object.parsedOptions as unknown;
  if (!Array.isArray(parsed)) return undefined;
  let merged: Rules | undefined;
  for (const entry of parsed as unknown[]) {
    if (!isRules(entry)) continue;
    const rules = entry['(validate.rules)'];
    if (isRules(rules)) merged = deepMerge(merged ?? {}, rules);
  }
  return merged;
}

const asList = (value: unknown): unknown[] =>
  Array.isArray(value) ? value : value === undefined ? [] : [value];
const num = (value: unknown): number | undefined =>
  typeof value === 'number'
    ? value
    : typeof value === 'string' && value.trim() !== ''
      ? Number(value)
      : undefined;
const durationSeconds = (value: unknown): number | undefined =>
  isRules(value) ? (num(value['seconds']) ?? 0) + (num(value['nanos']) ?? 0) / 1e9 : undefined;

/** PGV's comparison rules (const, lt, lte, gt, gte, in, not_in) over numbers. */
function compare(
  value: number,
  rules: Rules,
  read: (raw: unknown) => number | undefined,
  show: (n: number) => string,
): string | undefined {
  const c = read(rules['const']);
  if (c !== undefined && value !== c) return `must equal ${show(c)}`;
  const gt = read(rules['gt']);
  const gte = read(rules['gte']);
  const lt = read(rules['lt']);
  const lte = read(rules['lte']);
  const okLow = gt !== undefined ? value > gt : gte !== undefined ? value >= gte : true;
  const okHigh = lt !== undefined ? value < lt : lte !== undefined ? value <= lte : true;
  const low = gt ?? gte;
  const high = lt ?? lte;
  const describeLow =
    gt !== undefined ? `> ${show(gt)}` : gte !== undefined ? `>= ${show(gte)}` : '';
  const describeHigh =
    lt !== undefined ? `< ${show(lt)}` : lte !== undefined ? `<= ${show(lte)}` : '';
  if (low !== undefined && high !== undefined && low > high) {
    if (!okLow && !okHigh) return `must be ${describeHigh} or ${describeLow}`;
  } else if (!okLow || !okHigh) {
    return `must be ${[describeLow, describeHigh].filter((s) => s !== '').join(' and ')}`;
  }
  const within = asList(rules['in']).map(read);
  if (within.length > 0 && !within.includes(value))
    return `must be one of ${within.map((n) => (n === undefined ? '?' : show(n))).join(', ')}`;
  if (asList(rules['not_in']).map(read).includes(value)) return `must not be ${show(value)}`;
  return undefined;
}

const showNumber = (n: number): string => String(n);
const showSeconds = (n: number): string => `${n}s`;

function stringRule(value: string, rules: Rules): string | undefined {
  if (rules['ignore_empty'] === true && value === '') return undefined;
  const length = [...value].length;
  const bytes = Buffer.byteLength(value, 'utf8');
  const n = (key: string): number | undefined => num(rules[key]);
  if (typeof rules['const'] === 'string' && value !== rules['const'])
    return `must equal ${JSON.stringify(rules['const'])}`;
  if (n('len') !== undefined && length !== n('len')) return `must be ${n('len')} characters`;
  if (n('min_len') !== undefined && length < (n('min_len') ?? 0))
    return `must be at least ${n('min_len')} character(s)`;
  if (n('max_len') !== undefined && length > (n('max_len') ?? 0))
    return `must be at most ${n('max_len')} characters`;
  if (n('len_bytes') !== undefined && bytes !== n('len_bytes'))
    return `must be ${n('len_bytes')} bytes`;
  if (n('min_bytes') !== undefined && bytes < (n('min_bytes') ?? 0))
    return `must be at least ${n('min_bytes')} byte(s)`;
  if (n('max_bytes') !== undefined && bytes > (n('max_bytes') ?? 0))
    return `must be at most ${n('max_bytes')} bytes`;
  if (typeof rules['prefix'] === 'string' && !value.startsWith(rules['prefix']))
    return `must start with ${JSON.stringify(rules['prefix'])}`;
  if (typeof rules['suffix'] === 'string' && !value.endsWith(rules['suffix']))
    return `must end with ${JSON.stringify(rules['suffix'])}`;
  if (typeof rules['contains'] === 'string' && !value.includes(rules['contains']))
    return `must contain ${JSON.stringify(rules['contains'])}`;
  if (typeof rules['not_contains'] === 'string' && value.includes(rules['not_contains']))
    return `must not contain ${JSON.stringify(rules['not_contains'])}`;
  const within = asList(rules['in']);
  if (within.length > 0 && !within.includes(value))
    return `must be one of ${within.map((v) => JSON.stringify(v)).join(', ')}`;
  if (asList(rules['not_in']).includes(value)) return `must not be ${JSON.stringify(value)}`;
  if (typeof rules['pattern'] === 'string') {
    let pattern: RegExp | undefined;
    try {
      pattern = new RegExp(rules['pattern'], 'u'); // RE2 syntax; skipped when JavaScript cannot read it
    } catch {
      pattern = undefined;
    }
    if (pattern !== undefined && !pattern.test(value)) return `must match ${rules['pattern']}`;
  }
  const wellKnown = rules['well_known_regex'];
  if (
    (wellKnown === 'HTTP_HEADER_NAME' || wellKnown === 'HTTP_HEADER_VALUE') &&
    /[\0\r\n]/.test(value)
  )
    return 'must not contain NUL, CR or LF';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// the walk

class Walker {
  readonly problems: SchemaProblem[] = [];
  readonly typesSeen = new Set<string>();
  private readonly entryFiles: Set<string>;

  constructor(private readonly schema: EnvoySchema) {
    this.entryFiles = new Set(schema.entryFiles);
  }

  private report(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /** Validate `value` as the message `type` (full name, with or without a leading dot). */
  message(type: protobuf.Type, value: Json, path: string): void {
    const name = typeName(type);
    this.typesSeen.add(name);
    if (this.wellKnown(name, value, path)) return;
    if (!isObject(value)) {
      this.report(path, `expected an object (${name}), got ${describe(value)}`);
      return;
    }
    const byName = new Map<string, protobuf.Field>();
    for (const field of type.fieldsArray) {
      byName.set(field.name, field);
      byName.set(jsonName(field), field);
    }
    const given = new Map<protobuf.Field, Json>();
    const oneofs = new Map<protobuf.OneOf, string[]>();
    for (const [key, child] of Object.entries(value)) {
      const at = childPath(path, key);
      const field = byName.get(key);
      if (field === undefined) {
        this.report(at, `unknown field "${key}" in ${name}${suggestion(key, type)}`);
        continue;
      }
      if (given.has(field)) {
        this.report(
          at,
          `field "${field.name}" given twice (as "${field.name}" and "${jsonName(field)}")`,
        );
        continue;
      }
      given.set(field, child);
      if (child === null) {
        this.report(at, `"${field.name}" is null (an empty YAML key?); remove it or give a value`);
        continue;
      }
      if (field.options?.['deprecated'] === true) {
        const since = field.options['(envoy.annotations.deprecated_at_minor_version)'] as unknown;
        this.report(
          at,
          `"${field.name}" is deprecated${typeof since === 'string' ? ` (since API ${since})` : ''} in ${name}`,
        );
      }
      const oneof = field.partOf;
      if (oneof !== null && field.options?.['proto3_optional'] !== true) {
        const members = oneofs.get(oneof) ?? [];
        members.push(field.name);
        oneofs.set(oneof, members);
      }
      this.field(field, child, at);
    }
    for (const [oneof, members] of oneofs) {
      if (members.length > 1)
        this.report(
          path,
          `only one of oneof "${oneof.name}" may be set in ${name}, got ${members.join(', ')}`,
        );
    }
    for (const oneof of type.oneofsArray) {
      if (oneof.options?.['(validate.required)'] === true && !oneofs.has(oneof)) {
        this.report(
          path,
          `${name} needs one of ${oneof.fieldsArray.map((f) => f.name).join(', ')} (oneof "${oneof.name}" is required)`,
        );
      }
    }
    for (const field of type.fieldsArray)
      this.rules(field, given.get(field), childPath(path, field.name), given.has(field));
  }

  private field(field: protobuf.Field, value: Json, path: string): void {
    if (field.map) {
      if (!isObject(value)) {
        this.report(
          path,
          `expected an object (map<${(field as unknown as protobuf.MapField).keyType}, ${field.type}>), got ${describe(value)}`,
        );
        return;
      }
      const keyType = (field as unknown as protobuf.MapField).keyType;
      for (const [key, child] of Object.entries(value)) {
        const at = childPath(path, key);
        if (keyType !== 'string') {
          const parsed =
            keyType === 'bool'
              ? key === 'true' || key === 'false'
                ? { ok: true }
                : { ok: false, reason: 'expected true or false' }
              : scalar(keyType, key);
          if (!parsed.ok)
            this.report(
              at,
              `map key ${JSON.stringify(key)}: ${'reason' in parsed ? parsed.reason : ''}`,
            );
        }
        if (child === null) {
          this.report(at, 'map value is null');
          continue;
        }
        this.single(field, child, at);
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        this.report(path, `expected a list (repeated ${field.type}), got ${describe(value)}`);
        return;
      }
      value.forEach((item, i) => {
        const at = childPath(path, i);
        if (item === null) this.report(at, 'list item is null');
        else this.single(field, item, at);
      });
      return;
    }
    this.single(field, value, path);
  }

  private single(field: protobuf.Field, value: Json, path: string): void {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) {
      this.message(resolved, value, path);
    } else if (resolved instanceof protobuf.Enum) {
      this.enumValue(resolved, value, path);
    } else {
      const checked = scalar(field.type, value);
      if (!checked.ok) this.report(path, checked.reason);
    }
  }

  private enumValue(type: protobuf.Enum, value: Json, path: string): number | undefined {
    const name = typeName(type);
    if (name === 'google.protobuf.NullValue') {
      if (value !== null) this.report(path, `expected null (${name}), got ${describe(value)}`);
      return 0;
    }
    let symbol: string | undefined;
    if (typeof value === 'string') {
      if (!(value in type.values)) {
        const names = Object.keys(type.values);
        const close = names.filter((n) => editDistance(n.toLowerCase(), value.toLowerCase()) <= 2);
        const hint =
          close.length > 0
            ? `did you mean ${close.map((n) => `"${n}"`).join(' or ')}?`
            : names.length <= 12
              ? `one of ${names.join(', ')}`
              : `${names.length} values`;
        this.report(path, `"${value}" is not a value of ${name} (${hint})`);
        return undefined;
      }
      symbol = value;
    } else if (typeof value === 'number' && Number.isInteger(value)) {
      symbol = type.valuesById[value];
      if (symbol === undefined) {
        this.report(path, `${value} is not a value of ${name}`);
        return undefined;
      }
    } else {
      this.report(path, `expected a ${name} name, got ${describe(value)}`);
      return undefined;
    }
    const options = type.valuesOptions?.[symbol];
    if (options?.['deprecated'] === true) this.report(path, `${name}.${symbol} is deprecated`);
    return type.values[symbol];
  }

  /** Well-known types with their own JSON forms; true when `name` is one (handled here). */
  private wellKnown(name: string, value: Json, path: string): boolean {
    const wrapped = WRAPPERS[name];
    if (wrapped !== undefined) {
      const checked = scalar(wrapped, value);
      if (!checked.ok) this.report(path, `${name} is written as a bare value: ${checked.reason}`);
      return true;
    }
    switch (name) {
      case 'google.protobuf.Any':
        this.any(value, path);
        return true;
      case 'google.protobuf.Duration':
        if (parseDuration(value) === undefined)
          this.report(path, `expected a duration such as "0.25s" or "5s", got ${describe(value)}`);
        return true;
      case 'google.protobuf.Timestamp':
        if (
          typeof value !== 'string' ||
          !TIMESTAMP.test(value) ||
          Number.isNaN(Date.parse(value))
        ) {
          this.report(path, `expected an RFC 3339 timestamp, got ${describe(value)}`);
        }
        return true;
      case 'google.protobuf.FieldMask':
        if (typeof value !== 'string')
          this.report(path, `expected a field mask string, got ${describe(value)}`);
        return true;
      case 'google.protobuf.Struct':
        if (!isObject(value))
          this.report(path, `expected an object (google.protobuf.Struct), got ${describe(value)}`);
        return true;
      case 'google.protobuf.ListValue':
        if (!Array.isArray(value))
          this.report(path, `expected a list (google.protobuf.ListValue), got ${describe(value)}`);
        return true;
      case 'google.protobuf.Value':
        return true;
      case 'google.protobuf.Empty':
        if (!isObject(value) || Object.keys(value).length > 0)
          this.report(path, `expected {} (google.protobuf.Empty), got ${describe(value)}`);
        return true;
      default:
        return false;
    }
  }

  /** Resolve a type URL to a bundled v3 message, or report why not. */
  private resolveTypeUrl(url: unknown, path: string): protobuf.Type | undefined {
    if (typeof url !== 'string' || !url.includes('/')) {
      this.report(
        path,
        `type URL must look like "type.googleapis.com/<message>", got ${describe(url)}`,
      );
      return undefined;
    }
    const full = url.slice(url.lastIndexOf('/') + 1);
    let found: protobuf.ReflectionObject | null = null;
    try {
      found = this.schema.root.lookup(full);
    } catch {
      found = null;
    }
    if (!(found instanceof protobuf.Type) || typeName(found) !== full) {
      this.report(
        path,
        `unknown type "${full}": no such message in Envoy's v3 API (grpc-js-xds ${this.schema.packageVersion})`,
      );
      return undefined;
    }
    const file = found.filename === null ? undefined : this.fileOf(found.filename);
    if (file !== undefined && !this.entryFiles.has(file) && !file.startsWith('google/')) {
      this.report(
        path,
        `"${full}" is not a v3 API type (the v2 API is no longer accepted by Envoy)`,
      );
      return undefined;
    }
    return found;
  }

  private fileOf(filename: string): string | undefined {
    const posix = toPosix(filename);
    for (const dir of this.schema.includeDirs) {
      const prefix = `${toPosix(dir)}/`;
      if (posix.startsWith(prefix)) return posix.slice(prefix.length);
    }
    return posix;
  }

  private any(value: Json, path: string): void {
    this.typesSeen.add('google.protobuf.Any');
    if (!isObject(value)) {
      this.report(
        path,
        `expected an object with "@type" (google.protobuf.Any), got ${describe(value)}`,
      );
      return;
    }
    if (!('@type' in value)) {
      this.report(path, 'google.protobuf.Any needs "@type"');
      return;
    }
    const type = this.resolveTypeUrl(value['@type'], childPath(path, '@type'));
    if (type === undefined) return;
    const name = typeName(type);
    const payload: JsonObject = {};
    for (const [key, child] of Object.entries(value)) if (key !== '@type') payload[key] = child;
    const special =
      name.startsWith('google.protobuf.') &&
      (WRAPPERS[name] !== undefined ||
        [
          'Any',
          'Duration',
          'Timestamp',
          'FieldMask',
          'Struct',
          'ListValue',
          'Value',
          'Empty',
        ].includes(name.slice(16)));
    if (special && name !== 'google.protobuf.Empty') {
      // Well-known types in an Any carry their JSON form under "value".
      for (const key of Object.keys(payload))
        if (key !== 'value')
          this.report(
            childPath(path, key),
            `unknown field "${key}" in an Any of ${name} (only "value")`,
          );
      if (!('value' in payload)) this.report(path, `an Any of ${name} needs "value"`);
      else this.message(type, payload['value'] ?? null, childPath(path, 'value'));
      return;
    }
    this.message(type, payload, path);
    if (TYPED_STRUCTS.has(name)) {
      const inner = payload['type_url'] ?? payload['typeUrl'];
      const innerType = this.resolveTypeUrl(inner, childPath(path, 'type_url'));
      const innerValue = payload['value'];
      if (innerType !== undefined && innerValue !== undefined)
        this.message(innerType, innerValue, childPath(path, 'value'));
    }
  }

  // PGV: applied to set fields, and (as PGV does) to unset scalars, lists and maps at their defaults.
  private rules(
    field: protobuf.Field,
    value: Json | undefined,
    path: string,
    present: boolean,
  ): void {
    if (value === null) return;
    const isSet = present && value !== undefined;
    if (!isSet && (field.partOf !== null || field.options?.['proto3_optional'] === true)) return; // unset oneof member
    const rules = rulesOf(field);
    if (rules === undefined) return;
    if (field.map) {
      const map = isSet && isObject(value) ? value : isSet ? undefined : {};
      if (map === undefined) return;
      const r = isRules(rules['map']) ? rules['map'] : undefined;
      if (r === undefined) return;
      const pairs = Object.keys(map).length;
      const min = num(r['min_pairs']);
      const max = num(r['max_pairs']);
      if (min !== undefined && pairs < min)
        this.report(path, `needs at least ${min} entr${min === 1 ? 'y' : 'ies'}`);
      if (max !== undefined && pairs > max) this.report(path, `takes at most ${max} entries`);
      for (const [key, child] of Object.entries(map)) {
        if (isRules(r['keys']))
          this.itemRules(field, 'string', key, r['keys'], childPath(path, key), true);
        if (isRules(r['values']))
          this.itemRules(field, field.type, child, r['values'], childPath(path, key), false);
      }
      return;
    }
    if (field.repeated) {
      const list = isSet && Array.isArray(value) ? value : isSet ? undefined : [];
      if (list === undefined) return;
      const r = isRules(rules['repeated']) ? rules['repeated'] : undefined;
      if (r === undefined) return;
      const min = num(r['min_items']);
      const max = num(r['max_items']);
      if (min !== undefined && list.length < min)
        this.report(path, `needs at least ${min} item${min === 1 ? '' : 's'}`);
      if (max !== undefined && list.length > max) this.report(path, `takes at most ${max} items`);
      if (r['unique'] === true && new Set(list.map((v) => JSON.stringify(v))).size !== list.length)
        this.report(path, 'items must be unique');
      if (isRules(r['items']))
        for (const [i, item] of list.entries())
          this.itemRules(field, field.type, item, r['items'] as Rules, childPath(path, i), false);
      return;
    }
    this.itemRules(field, field.type, isSet ? (value as Json) : undefined, rules, path, false);
  }

  /** Rules for one value (a singular field, a list item, a map key or value); `undefined` = unset. */
  private itemRules(
    field: protobuf.Field,
    kind: string,
    value: Json | undefined,
    rules: Rules,
    path: string,
    isMapKey: boolean,
  ): void {
    const resolved = isMapKey ? null : field.resolvedType;
    const fail = (message: string | undefined): void => {
      if (message !== undefined) this.report(path, message);
    };
    if (resolved instanceof protobuf.Type) {
      const name = typeName(resolved);
      const required = ['message', 'duration', 'timestamp', 'any'].some(
        (k) => isRules(rules[k]) && (rules[k] as Rules)['required'] === true,
      );
      if (value === undefined) {
        if (required) this.report(path, `"${field.name}" is required`);
        return;
      }
      const wrapped = WRAPPERS[name];
      if (wrapped !== undefined) {
        const r = rules[wrapped];
        const checked = scalar(wrapped, value);
        if (isRules(r) && checked.ok) fail(this.scalarRule(wrapped, checked, r));
      } else if (name === 'google.protobuf.Duration' && isRules(rules['duration'])) {
        const seconds = parseDuration(value);
        if (seconds !== undefined)
          fail(compare(seconds, rules['duration'], durationSeconds, showSeconds));
      }
      return;
    }
    if (resolved instanceof protobuf.Enum) {
      const r = rules['enum'];
      if (!isRules(r)) return;
      const numeric =
        value === undefined
          ? 0
          : typeof value === 'number'
            ? value
            : typeof value === 'string'
              ? resolved.values[value]
              : undefined;
      if (numeric === undefined) return;
      if (r['defined_only'] === true && resolved.valuesById[numeric] === undefined)
        this.report(path, `${numeric} is not a defined value`);
      fail(compare(numeric, r, num, (n) => resolved.valuesById[n] ?? String(n)));
      return;
    }
    const r = rules[kind];
    if (!isRules(r)) return;
    const defaults: Record<string, Json> = { string: '', bytes: '', bool: false };
    const checked = scalar(kind, value === undefined ? (defaults[kind] ?? 0) : value);
    if (checked.ok) fail(this.scalarRule(kind, checked, r));
  }

  private scalarRule(kind: string, checked: Scalar & { ok: true }, r: Rules): string | undefined {
    const value = checked.value;
    if (kind === 'string' && typeof value === 'string') return stringRule(value, r);
    if (kind === 'bool')
      return r['const'] !== undefined && value !== r['const']
        ? `must be ${String(r['const'])}`
        : undefined;
    if (kind === 'bytes') {
      const length = checked.bytes ?? 0;
      if (num(r['min_len']) !== undefined && length < (num(r['min_len']) ?? 0))
        return `must be at least ${num(r['min_len'])} bytes`;
      if (num(r['max_len']) !== undefined && length > (num(r['max_len']) ?? 0))
        return `must be at most ${num(r['max_len'])} bytes`;
      return undefined;
    }
    if (typeof value !== 'number') return undefined;
    if (r['ignore_empty'] === true && value === 0) return undefined;
    return compare(value, r, num, showNumber);
  }
}

/** Validate a JSON-like value as the message `type` (e.g. `envoy.config.bootstrap.v3.Bootstrap`). */
export function validateMessage(value: unknown, type: string, path = '$'): ValidationResult {
  const schema = loadEnvoySchema();
  const message = schema.root.lookupType(type);
  const walker = new Walker(schema);
  walker.message(message, value as Json, path);
  return { problems: walker.problems, typesSeen: walker.typesSeen };
}

// ---------------------------------------------------------------------------------------------
// YAML, and what a schema cannot see

export interface ParsedYaml {
  readonly value: unknown;
  readonly problems: SchemaProblem[];
}

/** Parse YAML as Envoy would read it; duplicate keys, syntax errors and yaml-cpp booleans are problems. */
export function parseEnvoyYaml(text: string): ParsedYaml {
  const doc = parseDocument(text, { uniqueKeys: true, merge: true, prettyErrors: false });
  const problems: SchemaProblem[] = [];
  for (const error of doc.errors) {
    const at = error.linePos?.[0];
    problems.push({
      path: '$',
      message: `YAML${at === undefined ? '' : ` (line ${at.line}, column ${at.col})`}: ${error.message.split('\n')[0] ?? ''}`,
    });
  }
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || node.type !== 'PLAIN' || typeof node.value !== 'string') return;
      if (!/^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/.test(node.value)) return;
      let path = '$';
      ancestors.forEach((ancestor, i) => {
        const next = ancestors[i + 1] ?? node;
        if (isSeq(ancestor)) path = childPath(path, ancestor.items.indexOf(next as never));
        else if (isPair(ancestor) && isScalar(ancestor.key))
          path = childPath(path, String(ancestor.key.value));
      });
      problems.push({
        path,
        message: `plain "${node.value}" is a boolean to Envoy's YAML reader (yaml-cpp) but a string here: quote it or write true/false`,
      });
    },
  });
  return { value: doc.toJS({ maxAliasCount: 100 }) as unknown, problems };
}

function walkObjects(
  value: unknown,
  path: string,
  visitor: (object: JsonObject, path: string) => void,
): void {
  if (Array.isArray(value))
    for (const [i, item] of value.entries()) walkObjects(item, childPath(path, i), visitor);
  else if (isObject(value)) {
    visitor(value, path);
    for (const [key, child] of Object.entries(value))
      walkObjects(child, childPath(path, key), visitor);
  }
}

const atType = (object: JsonObject): string | undefined => {
  const url = object['@type'];
  return typeof url === 'string' ? url.slice(url.lastIndexOf('/') + 1) : undefined;
};

export const HCM_TYPE =
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const EXT_AUTHZ_TYPE = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';

/**
 * Reference checks a bootstrap's schema cannot express and Envoy enforces at start (or silently
 * ignores): names unique, every cluster a route or a gRPC service names is defined, the HTTP filter
 * chain ends in the router, and every per-route filter config names a filter of its connection manager.
 */
export function crossCheckBootstrap(bootstrap: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  if (!isObject(bootstrap)) return [{ path: '$', message: 'the bootstrap is not an object' }];
  const resources = isObject(bootstrap['static_resources']) ? bootstrap['static_resources'] : {};
  const clusters = Array.isArray(resources['clusters']) ? resources['clusters'] : [];
  const names = new Set<string>();
  clusters.forEach((cluster, i) => {
    const name = isObject(cluster) ? cluster['name'] : undefined;
    if (typeof name !== 'string') return;
    if (names.has(name))
      problems.push({
        path: `$.static_resources.clusters[${i}].name`,
        message: `cluster "${name}" is defined twice`,
      });
    names.add(name);
  });
  const listenerNames = new Set<string>();
  (Array.isArray(resources['listeners']) ? resources['listeners'] : []).forEach((listener, i) => {
    const name = isObject(listener) ? listener['name'] : undefined;
    if (typeof name !== 'string') return;
    if (listenerNames.has(name))
      problems.push({
        path: `$.static_resources.listeners[${i}].name`,
        message: `listener "${name}" is defined twice`,
      });
    listenerNames.add(name);
  });
  const needCluster = (name: unknown, path: string, what: string): void => {
    if (typeof name === 'string' && !names.has(name))
      problems.push({ path, message: `${what} names cluster "${name}", which is not defined` });
  };
  walkObjects(bootstrap, '$', (object, path) => {
    const envoyGrpc = object['envoy_grpc'];
    if (isObject(envoyGrpc))
      needCluster(
        envoyGrpc['cluster_name'],
        `${childPath(path, 'envoy_grpc')}.cluster_name`,
        'a gRPC service',
      );
    if (atType(object) !== HCM_TYPE) return;
    const filters = Array.isArray(object['http_filters']) ? object['http_filters'] : [];
    const filterNames = new Set<string>();
    filters.forEach((filter, i) => {
      if (!isObject(filter)) return;
      const name = filter['name'];
      if (typeof name !== 'string') return;
      if (filterNames.has(name))
        problems.push({
          path: `${path}.http_filters[${i}].name`,
          message: `HTTP filter "${name}" appears twice`,
        });
      filterNames.add(name);
    });
    const last = filters[filters.length - 1];
    const lastType =
      isObject(last) && isObject(last['typed_config']) ? atType(last['typed_config']) : undefined;
    if (lastType !== ROUTER_TYPE)
      problems.push({
        path: `${path}.http_filters`,
        message: 'the last HTTP filter must be the router',
      });
    filters.forEach((filter, i) => {
      if (i === filters.length - 1 || !isObject(filter) || !isObject(filter['typed_config']))
        return;
      if (atType(filter['typed_config']) === ROUTER_TYPE)
        problems.push({
          path: `${path}.http_filters[${i}]`,
          message: 'the router must be the last HTTP filter: filters after it never run',
        });
    });
    const routeConfig = object['route_config'];
    walkObjects(routeConfig, `${path}.route_config`, (inner, innerPath) => {
      const perFilter = inner['typed_per_filter_config'];
      if (isObject(perFilter)) {
        for (const key of Object.keys(perFilter)) {
          if (!filterNames.has(key))
            problems.push({
              path: childPath(`${innerPath}.typed_per_filter_config`, key),
              message: `no HTTP filter named "${key}" in this connection manager: the per-route config would be ignored`,
            });
        }
      }
      const route = inner['route'];
      if (isObject(route)) {
        needCluster(route['cluster'], `${innerPath}.route.cluster`, 'a route');
        const weighted = route['weighted_clusters'];
        if (isObject(weighted) && Array.isArray(weighted['clusters'])) {
          weighted['clusters'].forEach((c, i) => {
            if (isObject(c))
              needCluster(
                c['name'],
                `${innerPath}.route.weighted_clusters.clusters[${i}].name`,
                'a route',
              );
          });
        }
      }
    });
  });
  return problems;
}

export interface LintResult extends ValidationResult {
  readonly config: unknown;
}

/** The whole lint: YAML as Envoy reads it, the Bootstrap schema (with every typed_config), references. */
export function lintEnvoyYaml(text: string): LintResult {
  const parsed = parseEnvoyYaml(text);
  const schema = validateMessage(parsed.value, 'envoy.config.bootstrap.v3.Bootstrap');
  return {
    config: parsed.value,
    problems: [...parsed.problems, ...schema.problems, ...crossCheckBootstrap(parsed.value)],
    typesSeen: schema.typesSeen,
  };
}
