/** Every process the bench starts is tracked, and killed when the bench ends, fails or is signalled. */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

export class ChildTracker {
  private readonly children = new Set<ChildProcess>();
  /** Pools and key files: removed with the processes that read them. */
  private workDir: string | undefined;

  track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  removeOnExit(dir: string): void {
    this.workDir = dir;
  }

  killAll(): void {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (this.workDir !== undefined) rmSync(this.workDir, { recursive: true, force: true });
    this.workDir = undefined;
  }

  /** A bench stopped by hand must not leave servers holding ports and CPU behind. */
  killAllOnExit(): void {
    process.on('exit', () => this.killAll());
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, () => {
        process.stderr.write(`\nbench: ${signal}, stopping everything it started\n`);
        this.killAll();
        process.exit(130);
      });
    }
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const stderrTails = new WeakMap<ChildProcess, string>();

/** The last 4,000 characters a child wrote to stderr: what an error about it should show. */
export function stderrTail(child: ChildProcess): string {
  return stderrTails.get(child) ?? '';
}

/** Keep reading a child's stdout (a full pipe would block it) and hand over each JSON line. */
export function drainLines(
  child: ChildProcess,
  onLine: (line: Record<string, unknown>) => void,
  onRaw?: (text: string) => void,
): void {
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let line: Record<string, unknown> | undefined;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        onRaw?.(text); // not a log line: output of a node flag such as --trace-gc
      }
      if (line !== undefined) onLine(line);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) =>
    stderrTails.set(child, (stderrTail(child) + chunk.toString()).slice(-4000)),
  );
}

/** Read JSON lines from a child's stdout until `ready` matches one; keep draining afterwards. */
export function waitForLine(
  child: ChildProcess,
  ready: (line: Record<string, unknown>) => boolean,
  what: string,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let found = false;
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start within 20 s: ${stderrTail(child)}`)),
      20_000,
    );
    drainLines(child, (line) => {
      if (!found && ready(line)) {
        found = true;
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!found)
        reject(
          new Error(`${what} exited (${code ?? signal}) before it was ready: ${stderrTail(child)}`),
        );
    });
  });
}
