import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { MemoryRegistry } from './memory-registry.js';
import { messageOf } from '../errors.js';
import { parseRegistryDocument, readRegistryText } from './registry-file.js';
import type { RegistryReader } from './registry.js';
import type { IssuerRecord, ServicePolicy, TenantPolicy } from './records.js';

export interface FileRegistryOptions {
  readonly allowInsecureIssuers: boolean;
  /** How often the file is read again, behind the watch (a missed event costs this long). */
  readonly pollMs: number;
  /** A new registry is in force; `issuers` changed or disappeared (their cached keys must go). */
  readonly onReloaded?: (issuers: string[], why: string) => void;
  /** The file changed but is not a valid registry: the last good one stays; `problem` names the field. */
  readonly onInvalid?: (problem: string, why: string) => void;
}

type ReloadOutcome = 'reloaded' | 'unchanged' | 'invalid';

/**
 * The embedded registry from `MATRYOSHKA_REGISTRY_FILE`, following the file: a watch on its
 * folder (a Kubernetes ConfigMap update swaps the `..data` symlink there: the file's own inode
 * never changes, the folder sees the rename) plus a poll, and `reload()` for SIGHUP. A change is
 * validated whole and swapped in at once; an invalid file keeps the last good registry. At start
 * the file must be valid: the service refuses to run with none.
 */
export class FileRegistry implements RegistryReader {
  private current: MemoryRegistry;
  private text: string;
  private generation = 0;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  /** The last problem reported, so a file that stays broken (or missing) is reported once. */
  private reported: string | undefined;

  constructor(
    readonly path: string,
    private readonly options: FileRegistryOptions,
  ) {
    this.text = this.read();
    this.current = new MemoryRegistry(
      parseRegistryDocument(this.text, options.allowInsecureIssuers),
    );
  }

  /** Start following the file. */
  start(): void {
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        // Any name in the folder: the file itself, or the `..data` symlink it resolves through.
        if (name === null || name === basename(this.path) || name.startsWith('..'))
          this.reload('watch');
      });
      this.watcher.on('error', () => undefined);
    } catch {
      // No watch (a platform or file system without one): the poll alone follows the file.
    }
    this.poller = setInterval(() => this.reload('poll'), this.options.pollMs);
    this.poller.unref();
  }

  stop(): void {
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
  }

  listIssuers(): IssuerRecord[] {
    return this.current.listIssuers();
  }

  /** Read and apply the file if it changed. Synchronous: the swap is atomic for every Check. */
  reload(why: string): ReloadOutcome {
    let text: string;
    try {
      text = this.read();
    } catch (error) {
      return this.invalid(error, why);
    }
    if (text === this.text) {
      // Asked explicitly about a file still broken: say so again, so the operator sees the answer.
      if (why === 'signal' && this.reported !== undefined) return this.invalid(this.reported, why);
      return 'unchanged';
    }
    let next: MemoryRegistry;
    try {
      next = new MemoryRegistry(parseRegistryDocument(text, this.options.allowInsecureIssuers));
    } catch (error) {
      // Remembered, so a poll does not parse the same broken file every interval.
      this.text = text;
      return this.invalid(error, why);
    }
    const changed = changedIssuers(this.current.listIssuers(), next.listIssuers());
    this.current = next;
    this.text = text;
    this.generation++;
    this.reported = undefined;
    this.options.onReloaded?.(changed, why);
    return 'reloaded';
  }

  private invalid(error: unknown, why: string): ReloadOutcome {
    const problem = messageOf(error);
    if (problem !== this.reported || why === 'signal') this.options.onInvalid?.(problem, why);
    this.reported = problem;
    return 'invalid';
  }

  private read(): string {
    return readRegistryText(this.path);
  }

  issuer(iss: string): Promise<IssuerRecord | undefined> {
    return this.current.issuer(iss);
  }
  tenant(tenant: string): Promise<TenantPolicy | undefined> {
    return this.current.tenant(tenant);
  }
  service(sid: string): Promise<ServicePolicy | undefined> {
    return this.current.service(sid);
  }
  principal(principal: string): Promise<string | undefined> {
    return this.current.principal(principal);
  }
  ready(): boolean {
    return true;
  }
  /** Grows with every registry swapped in: memo entries of an earlier one are ignored. */
  version(): number {
    return this.generation;
  }
}

function changedIssuers(before: readonly IssuerRecord[], after: readonly IssuerRecord[]): string[] {
  const docs = (list: readonly IssuerRecord[]) =>
    new Map(list.map((i) => [i.issuer, JSON.stringify(i)]));
  const a = docs(before);
  const b = docs(after);
  return [...new Set([...a.keys(), ...b.keys()])].filter((iss) => a.get(iss) !== b.get(iss));
}
