/**
 * What the daemon benchmarks share: a network namespace of their own with veth pairs in it, a
 * generator of N manifests over the three kinds, a probe of one process's CPU time, memory and
 * BPF descriptors, fast polling, percentiles, and a cleanup stack that also runs on Ctrl-C.
 *
 * Everything a benchmark creates (namespaces, bpffs dirs, temp dirs, processes) is registered
 * on its `Cleanup` the moment it exists, so a failure half-way leaves nothing behind.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import yaml from 'js-yaml';

import { chainProgramIds, ensureBpffsRoot, observeDispatchers } from '../src/kernel/index.js';
import {
  Daemon,
  OBJECTS,
  tcProgram,
  tracepointProgram,
  u32,
  xdpProgram,
  type Workspace,
} from '../test/helpers/env.js';

const execFileAsync = promisify(execFile);

/**
 * Tracepoints that fire only on events a test machine does not see (OOM kills, hardware
 * errors, thermal trips), so the programs on them cost nothing while a benchmark measures.
 */
export const QUIET_TRACEPOINTS = [
  'oom/mark_victim',
  'oom/wake_reaper',
  'oom/start_task_reaping',
  'oom/finish_task_reaping',
  'oom/skip_task_reaping',
  'oom/reclaim_retry_zone',
  'oom/compact_retry',
  'oom/oom_score_adj_update',
  'ras/mc_event',
  'ras/arm_event',
  'ras/non_standard_event',
  'error_report/error_report_end',
  'thermal/cdev_update',
  'thermal/thermal_temperature',
  'thermal/thermal_zone_trip',
];
/** The most programs one dispatcher chains (src/kernel MAX_CHAIN_LENGTH). */
const PROGRAMS_PER_HOOK = 32;
/** The kernel runs at most 64 BPF programs per tracepoint (BPF_TRACE_MAX_PROGS); more: E2BIG. */
const PROGRAMS_PER_TRACEPOINT = 64;

export const XDP_PASS = 2;
export const XDP_DROP = 1;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

// ---------------------------------------------------------------------------------------------
// Processes and cleanup

export async function runCommand(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const { stdout } = await execFileAsync(command, args, {
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

type CleanupStep = () => unknown;

/** Undo steps, run last-registered first; a failing step does not stop the others. */
export class Cleanup {
  private readonly steps: Array<{ what: string; step: CleanupStep }> = [];

  defer(what: string, step: CleanupStep): void {
    this.steps.push({ what, step });
  }

  async run(): Promise<void> {
    for (let entry = this.steps.pop(); entry; entry = this.steps.pop()) {
      try {
        await entry.step();
      } catch (err) {
        process.stderr.write(`cleanup: ${entry.what}: ${(err as Error).message}\n`);
      }
    }
  }
}

/**
 * Runs a benchmark's `main` as root, with its cleanup run on success, on error and on
 * SIGINT/SIGTERM.
 */
export async function runBenchmark(main: (cleanup: Cleanup) => Promise<void>): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('benchmarks need root (bpffs, network namespaces, BPF syscalls)\n');
    process.exitCode = 1;
    return;
  }
  const cleanup = new Cleanup();
  const interrupted = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: cleaning up\n`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await main(cleanup);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await cleanup.run();
  }
}

export interface RunningDaemon {
  daemon: Daemon;
  log: DaemonLog;
  probe: ProcessProbe;
}

/**
 * `bpfd run` inside `namespace` on the workspace, ready to work. Stopped at cleanup; when the
 * benchmark failed, the daemon's last lines are printed then.
 */
export async function startDaemon(
  workspace: Workspace,
  namespace: BenchNamespace,
  cleanup: Cleanup,
): Promise<RunningDaemon> {
  const daemon = new Daemon(workspace, namespace.name);
  const log = new DaemonLog(daemon);
  cleanup.defer('daemon', async () => {
    await stopDaemon(daemon);
    if (process.exitCode) process.stderr.write(`last daemon output:\n${log.tail()}\n`);
  });
  await log.waitFor('daemon ready', {}, 120_000);
  // nsenter executes the daemon in its own place, so the child's pid is the daemon's.
  return { daemon, log, probe: new ProcessProbe(daemon.child.pid!) };
}

/** Stops a daemon with SIGTERM, or SIGKILL when it has not exited after `graceMs`. */
export async function stopDaemon(daemon: Daemon, graceMs = 10_000): Promise<void> {
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), graceMs);
  await daemon.stop();
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// Network namespace and bpffs

/** One network namespace holding `pairs` veth pairs (both ends inside), all up, `lo` up. */
export class BenchNamespace {
  readonly interfaces: string[] = [];

  private constructor(readonly name: string) {}

  /** `tag`: a few letters that say which benchmark the namespace belongs to. */
  static async create(tag: string, pairs: number, cleanup: Cleanup): Promise<BenchNamespace> {
    const namespace = new BenchNamespace(`bgb${tag}${process.pid}`);
    await runCommand('ip', ['netns', 'add', namespace.name]);
    cleanup.defer(`namespace ${namespace.name}`, () => namespace.remove());

    const ip = (...args: string[]) => runCommand('ip', ['-n', namespace.name, ...args]);
    await ip('link', 'set', 'lo', 'up');
    for (let pair = 0; pair < pairs; pair++) {
      const [a, b] = [`${tag}${pair}a`, `${tag}${pair}b`];
      await ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      await ip('link', 'set', a, 'up');
      await ip('link', 'set', b, 'up');
      namespace.interfaces.push(a, b);
    }
    return namespace;
  }

  /** `nsenter` arguments that run a command in this namespace and keep the host's bpffs. */
  enter(command: string, ...args: string[]): string[] {
    return [`--net=/run/netns/${this.name}`, command, ...args];
  }

  exec(command: string, args: string[], env: Record<string, string> = {}): Promise<string> {
    return runCommand('nsenter', this.enter(command, ...args), env);
  }

  async ifindex(ifname: string): Promise<number> {
    const out = await runCommand('ip', ['-n', this.name, '-j', 'link', 'show', 'dev', ifname]);
    return (JSON.parse(out) as Array<{ ifindex: number }>)[0].ifindex;
  }

  async remove(): Promise<void> {
    await runCommand('ip', ['netns', 'del', this.name]);
  }
}

/** A bpffs dir of this benchmark's own (for the hand-run tools' pins), removed at cleanup. */
export function scratchBpffsDir(tag: string, cleanup: Cleanup): string {
  const dir = `/sys/fs/bpf/bpfdbench-${tag}-${process.pid}`;
  ensureBpffsRoot(dir);
  cleanup.defer(`bpffs dir ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Files (pins) under a bpffs dir; empty dirs do not count. */
export function pinFiles(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** Programs in the chain the XDP dispatcher of `ifindex` runs now; 0 when none runs. */
export function xdpChainLength(bpffsRoot: string, ifindex: number): number {
  try {
    const dispatcher = observeDispatchers(bpffsRoot).find(
      (d) => d.hook.kind === 'xdp' && d.hook.ifindex === ifindex,
    );
    if (!dispatcher?.link || !dispatcher.current) return 0;
    if (dispatcher.link.programId !== dispatcher.current.programId) return 0;
    return chainProgramIds(dispatcher.current.dir).length;
  } catch {
    // the daemon is rewriting the dir right now
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Manifests

export type BenchKind = 'xdp' | 'tc' | 'tracepoint';

export interface BenchObject {
  kind: BenchKind;
  name: string;
  /** Manifest file name, relative to the manifest dir. */
  file: string;
  /** 0 for the first version; each edit bumps it, which changes the program's global data. */
  variant: number;
  /** XDP and TC: the interface it attaches to. */
  iface?: string;
  /** Tracepoint programs: `group/event`. */
  tracepoint?: string;
  direction?: 'ingress' | 'egress';
}

export interface KindMix {
  xdp: number;
  tc: number;
  tracepoint: number;
}

/**
 * The mix the scale benchmarks use: a tenth XDP, a tenth TC, the rest tracepoints. Interface
 * programs are bounded by the hooks (32 per hook), so a node with many programs has most of
 * them elsewhere; here on tracepoints, which take 64 each.
 */
export function kindMix(count: number): KindMix {
  const xdp = Math.max(1, Math.round(count / 10));
  const tc = Math.max(1, Math.round(count / 10));
  return { xdp, tc, tracepoint: Math.max(0, count - xdp - tc) };
}

/** One object per file, spread round-robin over the interfaces (and TC directions). */
export function benchObjects(mix: KindMix, interfaces: string[], prefix = 'bench'): BenchObject[] {
  const hooks = interfaces.length;
  if (mix.xdp > hooks * PROGRAMS_PER_HOOK || mix.tc > 2 * hooks * PROGRAMS_PER_HOOK) {
    throw new Error(`${interfaces.length} interfaces cannot hold ${mix.xdp} XDP / ${mix.tc} TC`);
  }
  if (mix.tracepoint > QUIET_TRACEPOINTS.length * PROGRAMS_PER_TRACEPOINT) {
    throw new Error(
      `${QUIET_TRACEPOINTS.length} tracepoints cannot hold ${mix.tracepoint} programs`,
    );
  }
  const objects: BenchObject[] = [];
  const add = (kind: BenchKind, index: number, extra: Partial<BenchObject> = {}) => {
    const name = `${prefix}-${kind}-${String(index).padStart(4, '0')}`;
    objects.push({ kind, name, file: `${name}.yaml`, variant: 0, ...extra });
  };
  for (let i = 0; i < mix.xdp; i++) add('xdp', i, { iface: interfaces[i % hooks] });
  for (let i = 0; i < mix.tc; i++) {
    const direction = i % 2 === 0 ? 'ingress' : 'egress';
    add('tc', i, { iface: interfaces[Math.floor(i / 2) % hooks], direction });
  }
  for (let i = 0; i < mix.tracepoint; i++) {
    add('tracepoint', i, { tracepoint: QUIET_TRACEPOINTS[i % QUIET_TRACEPOINTS.length] });
  }
  return objects;
}

/** The manifest document of an object; `variant` changes its global data (a new program). */
export function manifestOf(object: BenchObject): object {
  const odd = object.variant % 2 === 1;
  switch (object.kind) {
    case 'xdp':
      return xdpProgram(object.name, {
        sectionname: 'stats',
        interfaceselector: { interface: object.iface },
        globaldata: { verdict: u32(odd ? XDP_DROP : XDP_PASS) },
        bytecode: { path: path.join(OBJECTS, 'xdp_counter.o') },
      });
    case 'tc':
      return tcProgram(object.name, {
        sectionname: 'stats',
        direction: object.direction,
        interfaceselector: { interface: object.iface },
        globaldata: { verdict: u32(odd ? TC_ACT_SHOT : TC_ACT_OK) },
        bytecode: { path: path.join(OBJECTS, 'tc_counter.o') },
      });
    case 'tracepoint':
      return tracepointProgram(object.name, {
        sectionname: 'tracepoint_openat',
        name: object.tracepoint ?? QUIET_TRACEPOINTS[0],
        globaldata: { match_tgid: u32(object.variant) },
        bytecode: { path: path.join(OBJECTS, 'tracepoint_counter.o') },
      });
  }
}

/** Writes each object's manifest into `manifestDir` as deploy tools do: a hidden file renamed. */
export function writeObjects(manifestDir: string, objects: BenchObject[]): void {
  for (const object of objects) {
    const file = path.join(manifestDir, object.file);
    const hidden = path.join(manifestDir, `.${object.file}.tmp`);
    fs.writeFileSync(hidden, yaml.dump(manifestOf(object)));
    fs.renameSync(hidden, file);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring a process

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return clockTicks;
}

export interface BpfDescriptors {
  programs: number;
  maps: number;
  links: number;
  perfEvents: number;
}

/** CPU time, memory and open BPF descriptors of one process, read from /proc. */
export class ProcessProbe {
  constructor(readonly pid: number) {}

  /** user + system CPU seconds of this process (its threads included). */
  cpuSeconds(pid = this.pid): number {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  }

  /** Direct children (the daemon's `ip monitor`). */
  childPids(): number[] {
    const tasks = fs.readdirSync(`/proc/${this.pid}/task`);
    return tasks.flatMap((task) =>
      fs
        .readFileSync(`/proc/${this.pid}/task/${task}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number),
    );
  }

  /** Voluntary context switches of all threads: how often the process woke up to wait again. */
  wakeups(): number {
    return fs.readdirSync(`/proc/${this.pid}/task`).reduce((sum, task) => {
      const status = fs.readFileSync(`/proc/${this.pid}/task/${task}/status`, 'utf8');
      return sum + Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    }, 0);
  }

  rssKb(): number {
    return this.statusField('VmRSS');
  }

  peakRssKb(): number {
    return this.statusField('VmHWM');
  }

  alive(): boolean {
    return fs.existsSync(`/proc/${this.pid}/stat`);
  }

  bpfDescriptors(): BpfDescriptors {
    const counts: BpfDescriptors = { programs: 0, maps: 0, links: 0, perfEvents: 0 };
    for (const fd of fs.readdirSync(`/proc/${this.pid}/fd`)) {
      let target: string;
      try {
        target = fs.readlinkSync(`/proc/${this.pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      if (target === 'anon_inode:bpf-prog') counts.programs++;
      else if (target === 'anon_inode:bpf-map') counts.maps++;
      else if (target === 'anon_inode:bpf_link' || target === 'anon_inode:bpf-link') counts.links++;
      else if (target === 'anon_inode:[perf_event]') counts.perfEvents++;
    }
    return counts;
  }

  private statusField(field: string): number {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) : 0;
  }
}

const RECENT_LINES = 40;

/** The daemon's JSON log lines as records, for timestamps of what it did. */
export class DaemonLog {
  private records: Array<Record<string, unknown>> = [];
  private partial = '';
  private readonly recent: string[] = [];

  constructor(daemon: Daemon) {
    daemon.child.stdout!.on('data', (chunk: Buffer) => this.take(chunk.toString('utf8')));
    daemon.child.stderr!.on('data', (chunk: Buffer) => this.remember(chunk.toString('utf8')));
  }

  /** The last lines the daemon wrote, for the report of a failed benchmark. */
  tail(): string {
    return this.recent.join('\n');
  }

  /** The first record with this message (and fields) logged since the last `clear()`. */
  find(message: string, fields: Record<string, unknown> = {}): Record<string, unknown> | undefined {
    return this.records.find(
      (record) =>
        record.msg === message &&
        Object.entries(fields).every(([key, value]) => record[key] === value),
    );
  }

  /** Every record with this message logged since the last `clear()`. */
  all(message: string): Array<Record<string, unknown>> {
    return this.records.filter((record) => record.msg === message);
  }

  clear(): void {
    this.records = [];
  }

  waitFor(
    message: string,
    fields: Record<string, unknown> = {},
    timeoutMs = 60_000,
  ): Promise<Record<string, unknown>> {
    const what = `daemon log "${message}" ${JSON.stringify(fields)}`;
    return pollUntil(what, () => this.find(message, fields), { timeoutMs });
  }

  private remember(line: string): void {
    this.recent.push(line.trimEnd());
    if (this.recent.length > RECENT_LINES) this.recent.shift();
  }

  private take(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      this.remember(line);
      try {
        this.records.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON line (a libbpf message on stdout, say)
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Polling and figures

export interface PollOptions {
  intervalMs?: number;
  timeoutMs?: number;
}

/**
 * Calls `probe` every `intervalMs` until it returns something truthy. A probe that throws
 * (a file caught between two writes) counts as "not yet"; its last error is in the timeout.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => T | undefined | null | false,
  { intervalMs = 2, timeoutMs = 60_000 }: PollOptions = {},
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = probe();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > deadline) {
      const cause = lastError === undefined ? '' : ` (last error: ${String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms: ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Nearest-rank percentile of `values` (p in 0..100). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export function fixed(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

/** Prints rows as a table with aligned columns; the first row is the header. */
export function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  rows.forEach((row, index) => {
    const cells = row.map((cell, column) =>
      column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]),
    );
    process.stdout.write(`${cells.join('  ')}\n`);
    if (index === 0) process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  });
}

/** The machine, once at the top of every benchmark's output. */
export function printMachine(title: string): void {
  const cpu = os.cpus();
  process.stdout.write(
    `${title}\n${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} CPUs, ` +
      `Linux ${os.release()}, node ${process.version}\n\n`,
  );
}

/** An environment variable as a positive integer, or the default. */
export function envInteger(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}
