import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { MemoryRegistry } from './memory-registry.js';
import { messageOf } from '../errors.js';
import { RecordError } from './records.js';
import { parseRegistryDocument, readRegistryText, saysNoIssuers } from './registry-file.js';
import type { RegistryReader } from './registry.js';
import type { IssuerRecord, ServicePolicy, TenantPolicy } from './records.js';

export interface FileRegistryOptions {
  readonly allowInsecureIssuers: boolean;
  /** How often the file is read again, behind the watch (a missed event costs this long). */
  readonly pollMs: number;
  /**
   * A changed file is applied only once two reads this far apart (ms) found the same text: a file
   * being written in place (`cp`, an editor, a chunked copy) is never applied half-written.
   * Default SETTLE_MS.
   */
  readonly settleMs?: number;
  /** A new registry is in force; `issuers` changed or disappeared (their cached keys must go). */
  readonly onReloaded?: (issuers: string[], why: string) => void;
  /** The file changed but is not a valid registry: the last good one stays; `problem` names the field. */
  readonly onInvalid?: (problem: string, why: string) => void;
}

/** `settling`: the file changed; it is applied once the same text is read again SETTLE_MS later. */
type ReloadOutcome = 'reloaded' | 'unchanged' | 'invalid' | 'settling';

/** Milliseconds a changed file must stay the same before it is applied (some tens of ms). */
export const SETTLE_MS = 50;

/**
 * The embedded registry from `MATRYOSHKA_REGISTRY_FILE`, following the file: a watch on its
 * folder (a Kubernetes ConfigMap update swaps the `..data` symlink there: the file's own inode
 * never changes, the folder sees the rename) plus a poll, and `reload()` for SIGHUP. A change is
 * validated whole and swapped in at once; an invalid file keeps the last good registry. At start
 * the file must be valid: the service refuses to run with none.
 *
 * Applied whole or not at all: a change is applied only once it has settled (the same text on two
 * reads `settleMs` apart; a file still being written keeps changing), and a file that would remove
 * every issuer only when it says so (`issuers: []`): an empty or truncated read never empties the
 * registry.
 */
export class FileRegistry implements RegistryReader {
  private current: MemoryRegistry;
  private text: string;
  private generation = 0;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  /** The last problem reported, so a file that stays broken (or missing) is reported once. */
  private reported: string | undefined;
  /** A changed text read once, waiting to be read again unchanged before it is applied. */
  private pending: { readonly text: string; readonly at: number } | undefined;
  private settleTimer: NodeJS.Timeout | undefined;

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
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
  }

  private get settleMs(): number {
    return this.options.settleMs ?? SETTLE_MS;
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
      this.pending = undefined;
      return this.invalid(error, why);
    }
    if (text === this.text) {
      this.pending = undefined;
      // Asked explicitly about a file still broken: say so again, so the operator sees the answer.
      if (why === 'signal' && this.reported !== undefined) return this.invalid(this.reported, why);
      return 'unchanged';
    }
    // Changed: applied only when read again unchanged a while later (a writer still at work
    // would have changed it meanwhile).
    const now = performance.now();
    if (this.pending === undefined || this.pending.text !== text) {
      this.pending = { text, at: now };
      this.settleLater(why);
      return 'settling';
    }
    if (now - this.pending.at < this.settleMs) {
      this.settleLater(why);
      return 'settling';
    }
    this.pending = undefined;
    let next: MemoryRegistry;
    try {
      next = new MemoryRegistry(parseRegistryDocument(text, this.options.allowInsecureIssuers));
      if (
        next.listIssuers().length === 0 &&
        this.current.listIssuers().length > 0 &&
        !saysNoIssuers(text)
      )
        throw new RecordError(
          'issuers',
          'the file would remove every issuer; not applied (write `issuers: []` to mean it)',
        );
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

  /** Read the file again once it has had `settleMs` to settle. */
  private settleLater(why: string): void {
    if (this.settleTimer !== undefined) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      this.reload(why);
    }, this.settleMs);
    this.settleTimer.unref();
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
