/**
 * Deadlines of Checks in flight, all served by one timer: arming a timer per Check (a Timeout
 * object, a Promise.race) costs more than most steps of a Check whose deadline almost never
 * passes. The timer is set for the earliest deadline; when it fires, every entry that is due fires
 * and it is set again for the earliest left. A settled Check just leaves the set.
 */
export interface Deadline {
  readonly at: number;
  readonly fire: () => void;
}

export class Deadlines {
  private readonly pending = new Set<Deadline>();
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (performance.now() ms); Infinity when none is armed. */
  private armedAt = Number.POSITIVE_INFINITY;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** `fire` runs once `inMs` have passed, unless the entry is removed first. */
  add(inMs: number, fire: () => void): Deadline {
    const entry: Deadline = { at: this.now() + Math.max(0, inMs), fire };
    this.pending.add(entry);
    if (entry.at < this.armedAt) this.arm(entry.at);
    return entry;
  }

  remove(entry: Deadline): void {
    this.pending.delete(entry);
  }

  get size(): number {
    return this.pending.size;
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, at - this.now()));
    // What a pending Check waits for (a socket, a fetch) keeps the process alive, not this timer.
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    let next = Number.POSITIVE_INFINITY;
    const due: Deadline[] = [];
    for (const entry of this.pending) {
      if (entry.at <= now) due.push(entry);
      else if (entry.at < next) next = entry.at;
    }
    // A timer that runs late finds several due at once: they fire in deadline order, not in the
    // order they were added.
    due.sort((a, b) => a.at - b.at);
    for (const entry of due) {
      this.pending.delete(entry);
      entry.fire();
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.armedAt) this.arm(next);
  }
}
