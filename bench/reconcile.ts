/**
 * What one reconcile costs at 10, 100 and 1000 objects: when nothing changed (target: under
 * 50 ms at 1000, growing linearly), and when one object among them changed (only that object
 * may be touched: its actions, its status file, its program and its hook's dispatcher).
 *
 * Usage (as root, after `npm run build`):  node dist/bench/reconcile.js
 *   BENCH_SIZES        object counts (default 10,100,1000)
 *   BENCH_ROUNDS       no-change reconciles per size (default 30)
 *   BENCH_CHANGES      one-object changes per size and kind (default 5)
 *   BENCH_NODE_ARGS    extra node flags for the measuring process (e.g. --cpu-prof)
 *
 * The Reconciler is driven in-process, as the daemon drives it. Interfaces must exist in the
 * process's network namespace, so this process creates a namespace with veth pairs and runs
 * itself again inside it (`--inner`) through nsenter, keeping the host's bpffs. Objects: a
 * tenth XDP, a tenth TC (both spread over the interfaces), the rest tracepoint programs on a
 * tracepoint that does not fire; one object per manifest file, sidecars beside them.
 *
 * Phases are timed from outside the reconcile module: the status writer is wrapped (it is
 * injected), desired-state build, observation and planning are timed by calling the same
 * exported functions on the same input right after each reconcile; "rest" is what remains of
 * the reconcile's wall time (executing an empty plan and building the status documents).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { builtinNodeLabels, loadConfig, type Config } from '../src/config/index.js';
import {
  buildDesired,
  observe,
  plan,
  Reconciler,
  type Logger,
  type ObservedState,
  type ReconcileResult,
} from '../src/reconcile/index.js';
import { StatusWriter } from '../src/status/index.js';
import { ManifestWatcher, type ManifestSnapshot } from '../src/watcher/index.js';
import { Workspace } from '../test/helpers/env.js';
import {
  BenchNamespace,
  benchObjects,
  Cleanup,
  envInteger,
  fixed,
  kindMix,
  median,
  percentile,
  pinFiles,
  printMachine,
  printTable,
  runBenchmark,
  writeObjects,
  type BenchKind,
  type BenchObject,
} from './common.js';

const INTERFACE_PAIRS = 4;
const TARGET_NO_CHANGE_MS = 50;
/** The watcher never reads on its own here: every read is an explicit, timed rescan. */
const NEVER_MS = 3_600_000;
const SETUP_VARIABLE = 'BENCH_RECONCILE_SETUP';

interface InnerSetup {
  manifestDir: string;
  configFile: string;
  bpffsRoot: string;
  interfaces: string[];
  sizes: number[];
  rounds: number;
  changes: number;
}

const quietLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** The real status writer, with the time spent in it and the files it rewrote counted. */
class TimedStatusWriter extends StatusWriter {
  elapsedMs = 0;
  rewritten = 0;

  reset(): void {
    this.elapsedMs = 0;
    this.rewritten = 0;
  }

  override async write(...args: Parameters<StatusWriter['write']>): Promise<boolean> {
    const started = performance.now();
    try {
      const changed = await super.write(...args);
      if (changed) this.rewritten++;
      return changed;
    } finally {
      this.elapsedMs += performance.now() - started;
    }
  }
}

function timed<T>(body: () => T): [T, number] {
  const started = performance.now();
  const value = body();
  return [value, performance.now() - started];
}

async function timedAsync<T>(body: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await body();
  return [value, performance.now() - started];
}

interface NoChangeRow {
  size: number;
  convergeMs: number;
  removeAllMs: number;
  /** JS heap held once everything is loaded, over the heap before, after a full GC. */
  heapGrowthBytes: number;
  totalMs: number[];
  desiredMs: number[];
  observeMs: number[];
  planMs: number[];
  statusMs: number[];
  restMs: number[];
  rescanMs: number[];
  /** The resync's reconcile: after forgetShortcuts(), every pin dir and sidecar read again. */
  resyncMs: number[];
  unexpectedActions: number;
  statusRewrites: number;
}

interface ChangeRow {
  size: number;
  kind: BenchKind;
  totalMs: number[];
  rescanMs: number[];
  actions: string;
  statusRewrites: number[];
  programsReplaced: number[];
  dispatchersReplaced: number[];
}

/** One size: converge, no-change rounds, one-object changes, remove everything. */
class SizeRun {
  readonly objects: BenchObject[];
  private readonly watcher: ManifestWatcher;
  private readonly statusWriter: TimedStatusWriter;
  private readonly reconciler: Reconciler;
  private snapshot: ManifestSnapshot | undefined;

  constructor(
    readonly size: number,
    private readonly setup: InnerSetup,
    private readonly config: Config,
  ) {
    this.objects = benchObjects(kindMix(size), setup.interfaces, `r${size}`);
    this.watcher = new ManifestWatcher({ dir: setup.manifestDir, debounceMs: NEVER_MS });
    this.statusWriter = new TimedStatusWriter({
      manifestDir: setup.manifestDir,
      nodeName: config.nodeName,
    });
    this.reconciler = new Reconciler(config, this.statusWriter, quietLogger);
  }

  async converge(): Promise<number> {
    writeObjects(this.setup.manifestDir, this.objects);
    this.snapshot = await this.watcher.start();
    const [result, ms] = await timedAsync(() => this.reconcile());
    const loaded = result.outcomes.filter((o) => o.state === 'loaded').length;
    if (loaded !== this.size) {
      const failed = result.outcomes.find((o) => o.state !== 'loaded');
      throw new Error(
        `${loaded} of ${this.size} objects loaded; first failure: ${failed?.message}`,
      );
    }
    return ms;
  }

  async noChange(row: NoChangeRow): Promise<void> {
    const documents = this.snapshot!.files.flatMap((file) => file.effective);
    const labels = builtinNodeLabels(this.config);
    for (let round = 0; round < this.setup.rounds; round++) {
      this.statusWriter.reset();
      const [result, totalMs] = await timedAsync(() => this.reconcile());
      row.unexpectedActions += result.plan.actions.length;
      row.statusRewrites += this.statusWriter.rewritten;

      const [observed, observeMs] = timed(() => observe(this.config.bpffsRoot));
      const running = (key: string) =>
        observed.programs.find((p) => p.key === key && p.programId !== undefined);
      const [objects, desiredMs] = await timedAsync(() =>
        buildDesired(documents, { config: this.config, labels, running }),
      );
      const programs = objects.flatMap((o) => (o.program ? [o.program] : []));
      const [, planMs] = timed(() => plan(programs, observed));
      const statusMs = this.statusWriter.elapsedMs;

      row.totalMs.push(totalMs);
      row.desiredMs.push(desiredMs);
      row.observeMs.push(observeMs);
      row.planMs.push(planMs);
      row.statusMs.push(statusMs);
      row.restMs.push(Math.max(0, totalMs - desiredMs - observeMs - planMs - statusMs));
      row.rescanMs.push((await timedAsync(() => this.watcher.rescan()))[1]);
      this.reconciler.forgetShortcuts();
      this.statusWriter.reset();
      const [resync, resyncMs] = await timedAsync(() => this.reconcile());
      row.resyncMs.push(resyncMs);
      row.unexpectedActions += resync.plan.actions.length;
      row.statusRewrites += this.statusWriter.rewritten;
    }
  }

  /** Edits one object of `kind` (new global data: a new program) and reconciles. */
  async changeOne(kind: BenchKind, row: ChangeRow): Promise<void> {
    const target = this.objects.find((o) => o.kind === kind);
    if (!target) return;
    const actionCounts = new Map<string, number[]>();
    for (let change = 0; change < this.setup.changes; change++) {
      target.variant++;
      writeObjects(this.setup.manifestDir, [target]);
      const [snapshot, rescanMs] = await timedAsync(() => this.watcher.rescan());
      this.snapshot = snapshot;

      const before = observe(this.config.bpffsRoot);
      this.statusWriter.reset();
      const [result, totalMs] = await timedAsync(() => this.reconcile());
      const after = observe(this.config.bpffsRoot);

      row.totalMs.push(totalMs);
      row.rescanMs.push(rescanMs);
      row.statusRewrites.push(this.statusWriter.rewritten);
      row.programsReplaced.push(replacedPrograms(before, after));
      row.dispatchersReplaced.push(replacedDispatchers(before, after));
      countActions(result, actionCounts);
    }
    row.actions = [...actionCounts]
      .map(([type, counts]) => `${type} ${counts.join('/')}`)
      .join(', ');
  }

  async removeAll(): Promise<number> {
    for (const object of this.objects) fs.rmSync(path.join(this.setup.manifestDir, object.file));
    this.snapshot = await this.watcher.rescan();
    const [, ms] = await timedAsync(() => this.reconcile());
    await this.watcher.close();
    const left = pinFiles(this.config.bpffsRoot);
    if (left.length > 0) throw new Error(`pins left after removing every manifest: ${left[0]}…`);
    return ms;
  }

  private reconcile(): Promise<ReconcileResult> {
    return this.reconciler.reconcile(this.snapshot!);
  }
}

function countActions(result: ReconcileResult, counts: Map<string, number[]>): void {
  const round = new Map<string, number>();
  for (const action of result.plan.actions)
    round.set(action.type, (round.get(action.type) ?? 0) + 1);
  for (const [type, count] of round) counts.set(type, [...(counts.get(type) ?? []), count]);
}

/** Objects whose kernel program is not the same one after the reconcile. */
function replacedPrograms(before: ObservedState, after: ObservedState): number {
  const ids = (state: ObservedState) => new Map(state.programs.map((p) => [p.key, p.programId]));
  const previous = ids(before);
  return [...ids(after)].filter(([key, id]) => previous.get(key) !== id).length;
}

/** Hooks whose dispatcher revision is not the same one after the reconcile. */
function replacedDispatchers(before: ObservedState, after: ObservedState): number {
  const ids = (state: ObservedState) =>
    new Map(
      state.dispatchers.map((d) => [`${d.hook.kind}/${d.hook.ifindex}`, d.current?.programId]),
    );
  const previous = ids(before);
  return [...ids(after)].filter(([hook, id]) => previous.get(hook) !== id).length;
}

/** Used JS heap after a full collection (the measuring process runs with --expose-gc). */
function heapAfterGc(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

function p50(values: number[]): string {
  return fixed(median(values), 2);
}

function reportNoChange(rows: NoChangeRow[], rounds: number): void {
  process.stdout.write(
    `\nreconcile with nothing changed (${rounds} rounds per size; ms, median)\n\n`,
  );
  printTable([
    [
      'objects',
      'p50',
      'p95',
      'µs/object',
      'desired',
      'observe',
      'plan',
      'status',
      'rest',
      'rescan',
      'resync',
    ],
    ...rows.map((row) => [
      String(row.size),
      p50(row.totalMs),
      fixed(percentile(row.totalMs, 95), 2),
      fixed((median(row.totalMs) * 1000) / row.size, 1),
      p50(row.desiredMs),
      p50(row.observeMs),
      p50(row.planMs),
      p50(row.statusMs),
      p50(row.restMs),
      p50(row.rescanMs),
      p50(row.resyncMs),
    ]),
  ]);
  process.stdout.write(
    '\ndesired: buildDesired; observe: pin tree + kernel ids; plan: planner; status: the status\n' +
      'writer (read, render, compare each sidecar); rest: the remainder of the reconcile;\n' +
      'rescan: the watcher parsing every manifest again (not part of a reconcile; the daemon\n' +
      'does it on each resync; a burst of file events parses only the files that changed);\n' +
      'resync: the reconcile after a resync, which reads every pin dir and compares every\n' +
      'sidecar with the disk again (p50 and the other columns skip both when nothing moved).\n',
  );

  const largest = rows.at(-1)!;
  const verdict = median(largest.totalMs) < TARGET_NO_CHANGE_MS ? 'met' : 'NOT met';
  process.stdout.write(
    `\ntarget: under ${TARGET_NO_CHANGE_MS} ms at ${largest.size} objects: ${verdict} ` +
      `(${p50(largest.totalMs)} ms)\n`,
  );
  const sizes = rows.map((row) => row.size).join(' / ');
  const perObject = rows.map((row) => fixed((median(row.totalMs) * 1000) / row.size, 1));
  process.stdout.write(`linearity: µs per object at ${sizes}: ${perObject.join(' / ')}\n`);
  for (const row of rows) {
    if (row.unexpectedActions > 0 || row.statusRewrites > 0) {
      process.stdout.write(
        `WARNING: ${row.size} objects: ${row.unexpectedActions} actions and ` +
          `${row.statusRewrites} status rewrites in no-change reconciles\n`,
      );
    }
  }

  process.stdout.write('\nconverge from empty / remove everything (ms, one run)\n\n');
  printTable([
    ['objects', 'load all', 'per object', 'remove all', 'per object', 'heap held', 'per object'],
    ...rows.map((row) => [
      String(row.size),
      fixed(row.convergeMs),
      fixed(row.convergeMs / row.size, 2),
      fixed(row.removeAllMs),
      fixed(row.removeAllMs / row.size, 2),
      `${fixed(row.heapGrowthBytes / 2 ** 20)} MiB`,
      `${fixed(row.heapGrowthBytes / 1024 / row.size)} KiB`,
    ]),
  ]);
  process.stdout.write(
    '\nheap held: JS heap after loading everything minus before, both after a full GC: the\n' +
      "watcher's snapshot and watches and the reconciler's state, as the daemon holds them.\n",
  );
}

function reportChanges(rows: ChangeRow[], changes: number): void {
  process.stdout.write(
    `\none object's global data changed among N (${changes} changes per row; ms, median)\n\n`,
  );
  printTable([
    [
      'objects',
      'kind',
      'reconcile',
      'rescan',
      'status files rewritten',
      'programs replaced',
      'dispatchers replaced',
      'actions per change',
    ],
    ...rows.map((row) => [
      String(row.size),
      row.kind,
      p50(row.totalMs),
      p50(row.rescanMs),
      row.statusRewrites.join('/'),
      row.programsReplaced.join('/'),
      row.dispatchersReplaced.join('/'),
      row.actions,
    ]),
  ]);
  process.stdout.write(
    '\nexpected per change: 1 status file, 1 program replaced, 1 dispatcher replaced for an\n' +
      'interface program (0 for a tracepoint); actions load + installChain + unload (XDP) or\n' +
      'load + attachTracepoint + unload (tracepoint).\n',
  );
}

async function inner(): Promise<void> {
  const setup = JSON.parse(process.env[SETUP_VARIABLE]!) as InnerSetup;
  const config = await loadConfig({
    file: setup.configFile,
    overrides: { manifestDir: setup.manifestDir, bpffsRoot: setup.bpffsRoot },
  });
  const noChangeRows: NoChangeRow[] = [];
  const changeRows: ChangeRow[] = [];

  for (const size of setup.sizes) {
    process.stdout.write(`${size} objects…\n`);
    const run = new SizeRun(size, setup, config);
    const heapBefore = heapAfterGc();
    const convergeMs = await run.converge();
    const row: NoChangeRow = {
      size,
      convergeMs,
      removeAllMs: 0,
      heapGrowthBytes: heapAfterGc() - heapBefore,
      totalMs: [],
      desiredMs: [],
      observeMs: [],
      planMs: [],
      statusMs: [],
      restMs: [],
      rescanMs: [],
      resyncMs: [],
      unexpectedActions: 0,
      statusRewrites: 0,
    };
    await run.noChange(row);
    for (const kind of ['xdp', 'tracepoint'] as const) {
      const change: ChangeRow = {
        size,
        kind,
        totalMs: [],
        rescanMs: [],
        actions: '',
        statusRewrites: [],
        programsReplaced: [],
        dispatchersReplaced: [],
      };
      await run.changeOne(kind, change);
      changeRows.push(change);
    }
    row.removeAllMs = await run.removeAll();
    noChangeRows.push(row);
  }
  reportNoChange(noChangeRows, setup.rounds);
  reportChanges(changeRows, setup.changes);
}

async function outer(cleanup: Cleanup): Promise<void> {
  printMachine('bench/reconcile: reconcile cost at scale');
  const namespace = await BenchNamespace.create('rc', INTERFACE_PAIRS, cleanup);
  const workspace = await Workspace.create();
  cleanup.defer('workspace', () => workspace.cleanup());

  const setup: InnerSetup = {
    manifestDir: workspace.manifests,
    configFile: workspace.configFile,
    bpffsRoot: workspace.bpffsRoot,
    interfaces: namespace.interfaces,
    sizes: (process.env.BENCH_SIZES ?? '10,100,1000').split(',').map(Number),
    rounds: envInteger('BENCH_ROUNDS', 30),
    changes: envInteger('BENCH_CHANGES', 5),
  };
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const script = fileURLToPath(import.meta.url);
  const child = spawn(
    'nsenter',
    namespace.enter(process.execPath, '--expose-gc', ...nodeArgs, script, '--inner'),
    {
      stdio: 'inherit',
      env: { ...process.env, [SETUP_VARIABLE]: JSON.stringify(setup) },
    },
  );
  cleanup.defer('measuring process', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`the measuring process exited with ${code}`);
}

if (process.argv.includes('--inner')) {
  await inner();
  // A file event that reaches a closed watcher can still arm its (here hour-long) debounce
  // timer, which would keep this process alive: leave explicitly once everything is printed.
  process.exit(0);
} else {
  await runBenchmark(outer);
}
