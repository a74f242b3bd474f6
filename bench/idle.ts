/**
 * What an idle daemon costs: CPU (user + system, from /proc/<pid>/stat) over a quiet window and
 * memory (VmRSS, VmHWM), with no object and with 1000 objects loaded.
 *
 * Usage (as root, after `npm run build`):  node dist/bench/idle.js
 *   BENCH_IDLE_SECONDS   length of each measured window (default 20)
 *   BENCH_IDLE_OBJECTS   objects of the loaded case (default 1000)
 *
 * The daemon runs in a network namespace of its own with veth pairs for the XDP and TC
 * programs (a tenth each; the rest are tracepoint programs on tracepoints that do not fire).
 * A window starts once the daemon has loaded everything, written every status, and used
 * almost no CPU for two seconds; the daemon's `ip monitor` child is measured too. The cron
 * resync (every 5 minutes by default) is not excluded: the output says when one was due in a
 * window, and which reconciles the daemon ran in it (it runs with debug logs for that).
 */
import { Workspace } from '../test/helpers/env.js';
import { observe } from '../src/reconcile/index.js';
import {
  BenchNamespace,
  benchObjects,
  Cleanup,
  envInteger,
  fixed,
  kindMix,
  pollUntil,
  printMachine,
  printTable,
  ProcessProbe,
  runBenchmark,
  startDaemon,
  writeObjects,
  type BenchObject,
  type RunningDaemon,
} from './common.js';

const WINDOW_SECONDS = envInteger('BENCH_IDLE_SECONDS', 20);
const OBJECTS = envInteger('BENCH_IDLE_OBJECTS', 1000);
const INTERFACE_PAIRS = 4;
const QUIET_MS = 2000;
const QUIET_CPU_SECONDS = 0.05;
const RESYNC_PERIOD_MS = 5 * 60_000;

interface IdleFigures {
  objects: number;
  daemonCpuSeconds: number;
  childCpuSeconds: number;
  wakeupsPerSecond: number;
  rssKb: number;
  peakRssKb: number;
  crossedResync: boolean;
  /** Reconciles the daemon ran in the window, by reason. */
  reconciles: string;
}

/** Everything loaded: every program pinned, tracepoints linked, chains as long as wanted. */
function converged(root: string, expected: ReturnType<typeof kindMix>): boolean {
  const observed = observe(root);
  const programs = observed.programs.filter((p) => p.programId !== undefined);
  const tracepoints = programs.filter((p) => p.key.startsWith('tracepoint/'));
  const chained = observed.dispatchers.reduce((sum, d) => sum + d.chainIds.length, 0);
  return (
    programs.length === expected.xdp + expected.tc + expected.tracepoint &&
    tracepoints.every((p) => p.linkId !== undefined) &&
    chained === expected.xdp + expected.tc
  );
}

function loadedStatuses(workspace: Workspace, objects: BenchObject[]): number {
  return objects.filter((o) => workspace.condition(o.file, o.name)?.type === 'Loaded').length;
}

/**
 * Waits until the daemon used almost no CPU for QUIET_MS: a reconcile, even a queued one,
 * keeps a core busy, while an idle daemon still wakes now and then.
 */
async function quiet(probe: ProcessProbe): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const before = probe.cpuSeconds();
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    if (probe.cpuSeconds() - before < QUIET_CPU_SECONDS) return;
    if (Date.now() > deadline) throw new Error('the daemon did not go quiet within 120 s');
  }
}

function reconcileReasons(records: Array<Record<string, unknown>>): string {
  if (records.length === 0) return 'none';
  const reasons = records.flatMap((record) => (record.reasons as string[] | undefined) ?? ['?']);
  return `${records.length} (${[...new Set(reasons)].join(', ')})`;
}

async function measureWindow(running: RunningDaemon, objects: number): Promise<IdleFigures> {
  const { probe } = running;
  await quiet(probe);
  const children = probe.childPids();
  const childCpu = () => children.reduce((sum, pid) => sum + probe.cpuSeconds(pid), 0);
  const startedAt = Date.now();
  running.log.clear();
  const [daemonBefore, childBefore, wakeupsBefore] = [
    probe.cpuSeconds(),
    childCpu(),
    probe.wakeups(),
  ];
  await new Promise((resolve) => setTimeout(resolve, WINDOW_SECONDS * 1000));
  const endedAt = Date.now();
  return {
    objects,
    daemonCpuSeconds: probe.cpuSeconds() - daemonBefore,
    childCpuSeconds: childCpu() - childBefore,
    wakeupsPerSecond: (probe.wakeups() - wakeupsBefore) / WINDOW_SECONDS,
    rssKb: probe.rssKb(),
    peakRssKb: probe.peakRssKb(),
    crossedResync:
      Math.floor(startedAt / RESYNC_PERIOD_MS) !== Math.floor(endedAt / RESYNC_PERIOD_MS),
    reconciles: reconcileReasons(running.log.all('reconcile done')),
  };
}

function report(rows: IdleFigures[]): void {
  process.stdout.write(`idle daemon over ${WINDOW_SECONDS} s windows\n\n`);
  printTable([
    [
      'objects',
      'daemon CPU s',
      '% of a core',
      'wakeups/s',
      'ip monitor CPU s',
      'VmRSS MiB',
      'VmHWM MiB',
      'resync due',
      'reconciles in window',
    ],
    ...rows.map((row) => [
      String(row.objects),
      fixed(row.daemonCpuSeconds, 2),
      fixed((100 * row.daemonCpuSeconds) / WINDOW_SECONDS, 2),
      fixed(row.wakeupsPerSecond, 0),
      fixed(row.childCpuSeconds, 2),
      fixed(row.rssKb / 1024),
      fixed(row.peakRssKb / 1024),
      row.crossedResync ? 'yes' : 'no',
      row.reconciles,
    ]),
  ]);
  process.stdout.write(
    '\nCPU is counted in clock ticks (1/100 s): a window with 0.00 s used less than one tick.\n' +
      "wakeups/s: voluntary context switches of all the daemon's threads per second.\n",
  );
}

async function main(cleanup: Cleanup): Promise<void> {
  printMachine('bench/idle: idle daemon CPU and memory');
  const namespace = await BenchNamespace.create('id', INTERFACE_PAIRS, cleanup);
  // Debug level: the daemon then logs each reconcile, which tells what woke it in a window.
  const workspace = await Workspace.create({ logLevel: 'debug' });
  cleanup.defer('workspace', () => workspace.cleanup());
  const running = await startDaemon(workspace, namespace, cleanup);
  const rows = [await measureWindow(running, 0)];

  const mix = kindMix(OBJECTS);
  const objects = benchObjects(mix, namespace.interfaces, 'idle');
  writeObjects(workspace.manifests, objects);
  await pollUntil('every object loaded', () => converged(workspace.bpffsRoot, mix), {
    intervalMs: 500,
    timeoutMs: 600_000,
  });
  await pollUntil('every status Loaded', () => loadedStatuses(workspace, objects) === OBJECTS, {
    intervalMs: 1000,
    timeoutMs: 600_000,
  });
  rows.push(await measureWindow(running, OBJECTS));
  report(rows);
}

await runBenchmark(main);
