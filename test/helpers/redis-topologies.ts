import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

/**
 * Redis topologies of our own for tests: a 3-master Cluster, a master watched by one Sentinel, and a
 * TLS-only server with a throwaway CA. Every process listens on a free loopback port, keeps its files
 * in a temp dir of its own, and is SIGKILLed by `dispose()`. The machine's own Redis is never touched.
 */

/** Ports are picked by binding and releasing: keep them few and unique within one run. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Ask one server something over a short-lived connection; undefined when it does not answer (yet). */
async function ask(port: number, command: string[], extra: RedisOptions = {}): Promise<unknown> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectTimeout: 1000,
    ...extra,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const [name, ...args] = command as [string, ...string[]];
    return await client.call(name, ...args);
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

async function until(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
  alive: () => boolean = () => true,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (!alive()) throw new Error(`${what}: a process exited`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** A group of redis-server processes sharing one temp dir. */
class Processes {
  readonly dir = mkdtempSync(join(tmpdir(), 'matryoshka-redis-topology-'));
  private readonly children: ChildProcess[] = [];
  private readonly stderr = new Map<ChildProcess, string>();

  spawn(args: string[]): ChildProcess {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
    let out = '';
    // Redis logs to stdout; keep the tail for error messages.
    const keep = (chunk: Buffer) => {
      out = (out + chunk.toString()).slice(-4000);
      this.stderr.set(child, out);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.children.push(child);
    return child;
  }

  alive(): boolean {
    return this.children.every((c) => c.exitCode === null && c.signalCode === null);
  }

  output(): string {
    return [...this.stderr.values()].join('\n---\n');
  }

  /** Wait until the server on `port` answers PING, failing as soon as one of ours exits. */
  answering(what: string, port: number, extra: RedisOptions = {}): Promise<void> {
    return until(
      what,
      10_000,
      async () => (await ask(port, ['PING'], extra)) === 'PONG',
      () => this.alive(),
    );
  }

  /**
   * Bring a topology up with `steps`; if any step fails, every process is killed and the error
   * carries the servers' output tail.
   */
  async startOrDispose<T>(steps: () => Promise<T>): Promise<T> {
    try {
      return await steps();
    } catch (error) {
      const output = this.output();
      await this.dispose();
      throw new Error(`${(error as Error).message}\n${output}`);
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const NO_PERSISTENCE = ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'];

/** A plain connection for assertions; its errors are the test's to see through its commands. */
function plainClient(options: RedisOptions): Redis {
  const client = new Redis({ host: '127.0.0.1', ...options });
  client.on('error', () => undefined);
  return client;
}

/** The processes of one topology, killed together by `dispose()`. */
abstract class Topology {
  protected constructor(protected readonly processes: Processes) {}

  dispose(): Promise<void> {
    return this.processes.dispose();
  }
}

/** Three masters, slots spread by `redis-cli --cluster create`, no replicas. */
export class RedisClusterServers extends Topology {
  private constructor(
    processes: Processes,
    readonly ports: readonly number[],
  ) {
    super(processes);
  }

  static async start(masters = 3): Promise<RedisClusterServers> {
    const processes = new Processes();
    const ports = await freePorts(masters);
    const cluster = new RedisClusterServers(processes, ports);
    return processes.startOrDispose(async () => {
      for (const port of ports) {
        processes.spawn([
          '--port',
          String(port),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(processes.dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          ...NO_PERSISTENCE,
          '--dir',
          processes.dir,
        ]);
      }
      for (const port of ports) await processes.answering(`cluster node ${port} up`, port);
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        { timeout: 30_000 },
      );
      await until('cluster_state:ok on every node', 15_000, async () => {
        const infos = await Promise.all(ports.map((p) => ask(p, ['CLUSTER', 'INFO'])));
        return infos.every(
          (info) =>
            typeof info === 'string' &&
            info.includes('cluster_state:ok') &&
            info.includes(`cluster_known_nodes:${masters}`),
        );
      });
      return cluster;
    });
  }

  /** `redis+cluster://` naming two of the three nodes: the client discovers the third. */
  get url(): string {
    return `redis+cluster://${this.ports
      .slice(0, 2)
      .map((p) => `127.0.0.1:${p}`)
      .join(',')}`;
  }

  /** A plain connection to one node (CLUSTER KEYSLOT, CLUSTER NODES, …). */
  node(index: number): Redis {
    return plainClient({ port: this.ports[index] as number });
  }
}

/** One master and one Sentinel watching it as `mymaster` (quorum 1). */
export class RedisSentinelServers extends Topology {
  readonly masterName = 'mymaster';

  private constructor(
    processes: Processes,
    readonly masterPort: number,
    readonly sentinelPort: number,
  ) {
    super(processes);
  }

  static async start(): Promise<RedisSentinelServers> {
    const processes = new Processes();
    const [masterPort, sentinelPort] = (await freePorts(2)) as [number, number];
    const setup = new RedisSentinelServers(processes, masterPort, sentinelPort);
    return processes.startOrDispose(async () => {
      processes.spawn(['--port', String(masterPort), ...NO_PERSISTENCE, '--dir', processes.dir]);
      await processes.answering(`master ${masterPort} up`, masterPort);
      // Sentinel rewrites its config file: it must be a writable file of its own.
      const conf = join(processes.dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${sentinelPort}`,
          'bind 127.0.0.1',
          `dir ${processes.dir}`,
          'sentinel resolve-hostnames no',
          `sentinel monitor ${setup.masterName} 127.0.0.1 ${masterPort} 1`,
          `sentinel down-after-milliseconds ${setup.masterName} 5000`,
          '',
        ].join('\n'),
      );
      processes.spawn([conf, '--sentinel']);
      await until(
        'sentinel knows the master',
        10_000,
        async () => {
          const addr = await ask(sentinelPort, [
            'SENTINEL',
            'GET-MASTER-ADDR-BY-NAME',
            setup.masterName,
          ]);
          return Array.isArray(addr) && addr[0] === '127.0.0.1' && addr[1] === String(masterPort);
        },
        () => processes.alive(),
      );
      return setup;
    });
  }

  get url(): string {
    return `redis+sentinel://127.0.0.1:${this.sentinelPort}/${this.masterName}`;
  }

  /** A plain connection to the master itself (assertions only). */
  master(): Redis {
    return plainClient({ port: this.masterPort });
  }

  sentinel(): Redis {
    return plainClient({ port: this.sentinelPort });
  }
}

/**
 * A TLS-only redis-server (`--port 0`): a throwaway CA and a server certificate for 127.0.0.1
 * (IP SAN), made with the `openssl` command line. Clients must trust `caFile`.
 */
export class RedisTlsServer extends Topology {
  private constructor(
    processes: Processes,
    readonly port: number,
  ) {
    super(processes);
  }

  /** The throwaway CA's certificate, made in the server's own dir. */
  get caFile(): string {
    return join(this.processes.dir, 'ca.pem');
  }

  static async start(): Promise<RedisTlsServer> {
    const processes = new Processes();
    const dir = processes.dir;
    const file = (name: string) => join(dir, name);
    return processes.startOrDispose(async () => {
      const openssl = (...args: string[]) => run('openssl', args, { cwd: dir, timeout: 20_000 });
      // A fresh P-256 key, unencrypted, for the CA and then for the server.
      const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
      await openssl(
        'req',
        '-x509',
        ...newKey,
        '-keyout',
        file('ca.key'),
        '-out',
        file('ca.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=matryoshka test CA',
      );
      await openssl(
        'req',
        ...newKey,
        '-keyout',
        file('server.key'),
        '-out',
        file('server.csr'),
        '-subj',
        '/CN=127.0.0.1',
      );
      writeFileSync(
        file('server.ext'),
        'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
      );
      await openssl(
        'x509',
        '-req',
        '-in',
        file('server.csr'),
        '-CA',
        file('ca.pem'),
        '-CAkey',
        file('ca.key'),
        '-CAcreateserial',
        '-out',
        file('server.pem'),
        '-days',
        '1',
        '-extfile',
        file('server.ext'),
      );
      const [port] = (await freePorts(1)) as [number];
      const server = new RedisTlsServer(processes, port);
      processes.spawn([
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        file('server.pem'),
        '--tls-key-file',
        file('server.key'),
        '--tls-ca-cert-file',
        file('ca.pem'),
        '--tls-auth-clients',
        'no',
        ...NO_PERSISTENCE,
        '--dir',
        dir,
      ]);
      await processes.answering(`TLS redis ${port} up`, port, { tls: server.tlsOptions() });
      return server;
    });
  }

  get url(): string {
    return `rediss://127.0.0.1:${this.port}`;
  }

  tlsOptions(): { ca: string } {
    return { ca: readFileSync(this.caFile, 'utf8') };
  }

  /** A client that trusts the test CA (assertions only). */
  client(): Redis {
    return plainClient({ port: this.port, tls: this.tlsOptions() });
  }
}
