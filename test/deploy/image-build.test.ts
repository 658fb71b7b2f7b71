/**
 * The image builds from the repository as it is. No Docker daemon here, so the test replays
 * deploy/Dockerfile itself: its build stage gets exactly the files its COPY lines name (minus what
 * .dockerignore keeps out of the context), node_modules as `npm ci` would install them (this
 * checkout's, from the same lock file), and the lifecycle script `npm ci` runs; the runtime stage
 * gets what its `COPY --from=build` lines take; then the ENTRYPOINT runs there, `--help` and
 * `serve` until /healthz answers. A step the replay does not know fails the test rather than
 * being skipped.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from '../helpers/processes.js';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

interface Stage {
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Dockerfile instructions by stage: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\S+)\s+(.*)$/.exec(line);
    assert.ok(match, `a Dockerfile line this test can read: ${line}`);
    const keyword = (match[1] ?? '').toUpperCase();
    const args = match[2] ?? '';
    if (keyword === 'FROM') {
      stages.push({ name: /\sAS\s+(\S+)$/i.exec(args)?.[1], instructions: [] });
      continue;
    }
    assert.ok(stages.length > 0, `${keyword} before FROM`);
    stages.at(-1)?.instructions.push({ keyword, args });
  }
  return stages;
}

/** .dockerignore patterns as root-relative regular expressions (`*`, `**`, `?`; no `!` here). */
function dockerignore(): RegExp[] {
  const file = join(ROOT, '.dockerignore');
  assert.ok(existsSync(file), 'a .dockerignore keeps the context small and secrets out');
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((pattern) => {
      assert.ok(!pattern.startsWith('!'), `exceptions are not replayed here: ${pattern}`);
      const body = pattern
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .map((part) =>
          part === '**'
            ? '(?:.*/)?'
            : `${part
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]')}/`,
        )
        .join('')
        .replace(/\/$/, '');
      // A directory pattern covers everything below it.
      return new RegExp(`^${body}(?:/.*)?$`);
    });
}

/** Copy `source` (relative to the context) to `target` as COPY does, leaving out ignored paths. */
function copyFromContext(source: string, target: string, ignored: RegExp[]): number {
  const from = join(ROOT, source);
  assert.ok(existsSync(from), `COPY ${source}: in the repository`);
  let copied = 0;
  const walk = (path: string, to: string): void => {
    const rel = relative(ROOT, path);
    if (ignored.some((re) => re.test(rel))) return;
    if (statSync(path).isDirectory()) {
      mkdirSync(to, { recursive: true });
      for (const entry of readdirSync(path)) walk(join(path, entry), join(to, entry));
    } else {
      mkdirSync(dirname(to), { recursive: true });
      cpSync(path, to);
      copied++;
    }
  };
  walk(from, target);
  assert.ok(copied > 0, `COPY ${source}: .dockerignore leaves something to copy`);
  return copied;
}

/** `COPY [--flags] src... dest` as its flags, sources and destination (within WORKDIR). */
function copyArgs(args: string): { flags: string[]; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const dest = paths.pop();
  assert.ok(dest !== undefined && paths.length > 0, `COPY ${args}`);
  return { flags, sources: paths, dest };
}

function destination(root: string, workdir: string, dest: string, source: string): string {
  const base = join(root, dest.startsWith('/') ? dest : join(workdir, dest));
  // `COPY a b ./`: into the directory, under the source's name; `COPY src ./src`: as that path.
  return dest.endsWith('/') ? join(base, source.split('/').pop() ?? source) : base;
}

function run(command: string, cwd: string): { code: number | null; output: string } {
  const result = spawnSync('sh', ['-c', command], {
    cwd,
    encoding: 'utf8',
    env: { PATH: `${join(cwd, 'node_modules/.bin')}:${process.env['PATH'] ?? ''}` },
    timeout: 180_000,
  });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('deploy/Dockerfile builds from the repository as it is', () => {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8'));
  const build = stages.find((s) => s.name === 'build');
  const runtime = stages.at(-1);
  let scratch: string;
  let buildRoot: string;
  let runtimeRoot: string;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'matryoshka-image-'));
    buildRoot = join(scratch, 'build');
    runtimeRoot = join(scratch, 'runtime');
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('the build stage compiles from exactly the files it copies, and needs no dev dependency at run time', () => {
    assert.ok(build, 'a stage named build');
    const ignored = dockerignore();
    let workdir = '/';
    for (const { keyword, args } of build.instructions) {
      if (keyword === 'WORKDIR') workdir = args;
      else if (keyword === 'COPY') {
        const { flags, sources, dest } = copyArgs(args);
        assert.deepEqual(flags, [], `the build stage copies from the context only: COPY ${args}`);
        for (const source of sources)
          copyFromContext(source, destination(buildRoot, workdir, dest, source), ignored);
      } else if (keyword === 'RUN') {
        const app = join(buildRoot, workdir);
        for (const step of args.split('&&').map((s) => s.trim())) {
          if (/^npm ci( --no-audit| --no-fund)*$/.test(step)) {
            // npm ci installs the lock file's packages, then runs the package's own `prepare`.
            assert.ok(existsSync(join(app, 'package-lock.json')), 'npm ci needs the lock file');
            symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
            const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as {
              scripts: Record<string, string>;
            };
            for (const script of ['preprepare', 'prepare', 'postprepare']) {
              const command = pkg.scripts[script];
              if (command === undefined) continue;
              const result = run(command, app);
              assert.equal(
                result.code,
                0,
                `${script} (${command}) in the build stage:\n${result.output}`,
              );
            }
          } else if (step === 'npm prune --omit=dev') {
            // Not replayed on the shared node_modules: instead, nothing the image runs may import a
            // package that prune removes (checked below, on the compiled output).
          } else {
            assert.fail(`a build step this test does not replay: ${step}`);
          }
        }
      } else {
        assert.ok(['ENV', 'ARG'].includes(keyword), `build stage instruction ${keyword}`);
      }
    }
    const app = join(buildRoot, workdir);
    assert.ok(existsSync(join(app, 'dist/src/cli/main.js')), 'the entrypoint was compiled');
    assert.ok(!existsSync(join(app, 'dist/test')), 'tests are not compiled into the image');

    // What prune keeps: `dependencies`. Every package the compiled service imports must be one.
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const imported = new Set<string>();
    const scan = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) scan(path);
        else if (entry.name.endsWith('.js'))
          for (const m of readFileSync(path, 'utf8').matchAll(
            /(?:from\s+|import\s*\(\s*|import\s+)'([^'.][^']*)'/g,
          )) {
            const spec = m[1] ?? '';
            if (spec.startsWith('node:')) continue;
            const parts = spec.split('/');
            imported.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec));
          }
      }
    };
    scan(join(app, 'dist/src'));
    assert.ok(imported.size > 0, 'the scan found the service imports');
    for (const name of imported)
      assert.ok(
        name in pkg.dependencies,
        `dist/src imports ${name}, which npm prune --omit=dev removes`,
      );
  });

  it('the runtime stage takes what it copies from the build and its ENTRYPOINT serves /healthz', async () => {
    assert.ok(runtime && build && runtime !== build, 'a runtime stage after the build stage');
    assert.ok(existsSync(join(buildRoot, 'app/dist/src/cli/main.js')), 'the build stage ran');
    let workdir = '/';
    let buildWorkdir = '/';
    for (const { keyword, args } of build.instructions)
      if (keyword === 'WORKDIR') buildWorkdir = args;
    const env: Record<string, string> = {};
    let entrypoint: string[] = [];
    let cmd: string[] = [];
    for (const { keyword, args } of runtime.instructions) {
      if (keyword === 'WORKDIR') workdir = args;
      else if (keyword === 'ENV') {
        for (const m of args.matchAll(/(\w+)=(\S+)/g)) env[m[1] ?? ''] = m[2] ?? '';
      } else if (keyword === 'COPY') {
        const { flags, sources, dest } = copyArgs(args);
        assert.ok(
          flags.includes('--from=build'),
          `the runtime stage copies from the build: ${args}`,
        );
        for (const source of sources) {
          const from = join(
            buildRoot,
            source.startsWith('/') ? source : join(buildWorkdir, source),
          );
          const to = destination(runtimeRoot, workdir, dest, source);
          assert.ok(existsSync(from), `COPY --from=build ${source}: the build stage made it`);
          mkdirSync(dirname(to), { recursive: true });
          // node_modules is the shared install (a symlink in the build stage): link it again.
          if (source.endsWith('node_modules')) symlinkSync(join(ROOT, 'node_modules'), to);
          else cpSync(from, to, { recursive: true });
        }
      } else if (keyword === 'ENTRYPOINT') entrypoint = JSON.parse(args) as string[];
      else if (keyword === 'CMD') cmd = JSON.parse(args) as string[];
      else assert.ok(['USER', 'EXPOSE', 'ARG'].includes(keyword), `runtime instruction ${keyword}`);
    }
    assert.equal(entrypoint[0], 'node', 'the entrypoint runs node directly');
    const app = join(runtimeRoot, workdir);
    const argv = entrypoint.slice(1);

    const help = spawnSync(process.execPath, [...argv, '--help'], {
      cwd: app,
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '', ...env },
      timeout: 20_000,
    });
    assert.equal(help.status, 0, `--help: ${help.stderr}`);
    assert.match(help.stdout, /serve/);

    // The image's own command, on free loopback ports instead of the image's fixed ones.
    const child = spawn(process.execPath, [...argv, ...cmd], {
      cwd: app,
      env: {
        PATH: process.env['PATH'] ?? '',
        ...env,
        MATRYOSHKA_GRPC_PORT: '0',
        MATRYOSHKA_HTTP_PORT: '0',
        MATRYOSHKA_HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    try {
      const httpPort = await new Promise<number>((resolve, reject) => {
        let buffered = '';
        const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 30_000);
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          const complete = buffered.split('\n').slice(0, -1);
          for (const line of complete) {
            if (!line.includes('"matryoshka-authz serving"')) continue;
            clearTimeout(timer);
            resolve((JSON.parse(line) as { http_port: number }).http_port);
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`serve exited with ${code}: ${stderr}`));
        });
      });
      assert.equal(await get(httpPort, '/healthz'), 200);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    }
  });
});
