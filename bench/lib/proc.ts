/** Readers for /proc: a process's CPU time (all its threads) and memory, the machine's CPU. */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on Linux in practice). */
export function clkTck(): number {
  if (clockTicks !== undefined) return clockTicks;
  try {
    clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    clockTicks = 100;
  }
  return clockTicks;
}

/** utime + stime of the whole process (every thread; /proc/<pid>/stat sums them), in µs. */
export function processCpuMicros(pid: number, ticks = clkTck()): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm may hold spaces and parentheses: fields are counted from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / ticks;
}

export interface Memory {
  /** Peak resident set (VmHWM), KiB. */
  readonly hwmKiB: number;
  /** Current resident set (VmRSS), KiB. */
  readonly rssKiB: number;
}

export function processMemory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { hwmKiB: field('VmHWM'), rssKiB: field('VmRSS') };
}

/** Machine-wide jiffies from the first line of /proc/stat: busy and total, all cores. */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
    values;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

export interface MachineInfo {
  readonly nproc: number;
  readonly node: string;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly loadAverage: string;
  readonly memTotalMiB: number;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = safeRead('/proc/cpuinfo');
  const meminfo = safeRead('/proc/meminfo');
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    /* os.cpus() it is */
  }
  return {
    nproc,
    node: process.version,
    cpuModel:
      /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown',
    kernel: safeRead('/proc/sys/kernel/osrelease').trim(),
    loadAverage: safeRead('/proc/loadavg').split(' ').slice(0, 3).join(' '),
    memTotalMiB: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024),
  };
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
