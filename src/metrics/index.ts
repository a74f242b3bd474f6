/**
 * Prometheus metrics and the health endpoints. Every metric is declared here, on a registry of
 * its own (tests create as many as they like), with every label combination present from the
 * start. Label values are bounded: kinds, states, actions, results, hook kinds; per-program
 * kernel statistics use the object's kind and name, bounded by the manifests.
 */
import http from 'node:http';

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import { openPinIfExists, programInfo, withFds } from '../kernel/index.js';
import { BpfdError } from '../errors.js';
import type { Logger, ReconcileResult } from '../reconcile/index.js';

const OBJECT_STATES = ['loaded', 'notLoaded', 'notSelected', 'invalid'] as const;
const KINDS = ['XdpProgram', 'TcProgram', 'TracepointProgram'] as const;
const ACTIONS = [
  'load',
  'attachTracepoint',
  'installChain',
  'removeDispatcher',
  'removeStaleRevisions',
  'unload',
] as const;
const HOOK_KINDS = ['xdp', 'tc-ingress', 'tc-egress'] as const;
const RESULTS = ['success', 'error'] as const;
export const PULL_RESULTS = ['success', 'error'] as const;

interface LoadedProgramRef {
  kind: string;
  name: string;
  programPin: string;
}

export class Metrics {
  readonly registry = new Registry();
  private ready = false;
  private loadedPrograms: LoadedProgramRef[] = [];

  readonly reconciles = new Counter({
    name: 'bpfd_reconcile_total',
    help: 'Reconcile runs by result (error: an action failed or the run threw)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'bpfd_reconcile_duration_seconds',
    help: 'Time a reconcile run took',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly actions = new Counter({
    name: 'bpfd_actions_total',
    help: 'Kernel actions applied, by action and result',
    labelNames: ['action', 'result'],
    registers: [this.registry],
  });
  readonly objects = new Gauge({
    name: 'bpfd_objects',
    help: 'Manifest objects by kind and state after the last reconcile',
    labelNames: ['kind', 'state'],
    registers: [this.registry],
  });
  readonly kernelPrograms = new Gauge({
    name: 'bpfd_kernel_programs',
    help: 'Programs the daemon has pinned in the kernel (dispatchers not included)',
    registers: [this.registry],
  });
  readonly dispatchers = new Gauge({
    name: 'bpfd_dispatchers',
    help: 'Dispatchers attached, by hook kind',
    labelNames: ['hook'],
    registers: [this.registry],
  });
  readonly invalidDocuments = new Gauge({
    name: 'bpfd_manifest_invalid_documents',
    help: 'Manifest documents (or files) that do not parse or validate now',
    registers: [this.registry],
  });
  readonly driftRepaired = new Counter({
    name: 'bpfd_drift_repaired_total',
    help: 'Kernel actions that repaired drift: state changed outside the manifests',
    registers: [this.registry],
  });
  readonly imagePulls = new Counter({
    name: 'bpfd_image_pulls_total',
    help: 'Bytecode image resolutions (pulled or from the cache) by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly lastSuccess = new Gauge({
    name: 'bpfd_last_successful_reconcile_timestamp_seconds',
    help: 'When the last reconcile without errors finished (unix time)',
    registers: [this.registry],
  });
  /** Kernel statistics, read at scrape time: counters whose value the kernel keeps. */
  readonly programRuns = new Counter({
    name: 'bpfd_program_runs_total',
    help: 'Times the kernel ran the program (needs sysctl kernel.bpf_stats_enabled=1)',
    labelNames: ['kind', 'name'],
    registers: [this.registry],
    collect: () => this.collectProgramStats(),
  });
  readonly programRunSeconds = new Counter({
    name: 'bpfd_program_run_seconds_total',
    help: 'Time the kernel spent in the program (needs sysctl kernel.bpf_stats_enabled=1)',
    labelNames: ['kind', 'name'],
    registers: [this.registry],
  });

  constructor() {
    // Event-loop delay sampled once a second, not every 10 ms: an idle daemon stays asleep.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 });
    for (const result of RESULTS) this.reconciles.inc({ result }, 0);
    for (const action of ACTIONS)
      for (const result of RESULTS) this.actions.inc({ action, result }, 0);
    for (const kind of KINDS)
      for (const state of OBJECT_STATES) this.objects.set({ kind, state }, 0);
    for (const hook of HOOK_KINDS) this.dispatchers.set({ hook }, 0);
    for (const result of PULL_RESULTS) this.imagePulls.inc({ result }, 0);
    this.kernelPrograms.set(0);
    this.invalidDocuments.set(0);
  }

  recordReconcile(result: ReconcileResult, seconds: number, driftActions: number): void {
    const ok = result.execution.errors.size === 0 && result.execution.applied.every((a) => a.ok);
    this.reconciles.inc({ result: ok ? 'success' : 'error' });
    this.reconcileDuration.observe(seconds);
    for (const applied of result.execution.applied) {
      this.actions.inc({ action: applied.type, result: applied.ok ? 'success' : 'error' });
    }
    for (const kind of KINDS) {
      for (const state of OBJECT_STATES) {
        const count = result.outcomes.filter((o) => o.kind === kind && o.state === state).length;
        this.objects.set({ kind, state }, count);
      }
    }
    this.invalidDocuments.set(result.outcomes.filter((o) => o.state === 'invalid').length);
    this.kernelPrograms.set(
      result.observed.programs.filter((p) => p.programId !== undefined).length,
    );
    for (const hook of HOOK_KINDS) {
      this.dispatchers.set(
        { hook },
        result.observed.dispatchers.filter((d) => d.hook.kind === hook && d.link).length,
      );
    }
    if (driftActions > 0) this.driftRepaired.inc(driftActions);
    if (ok) this.lastSuccess.setToCurrentTime();
    this.loadedPrograms = result.outcomes.flatMap((o) => {
      const program = result.observed.programs.find((p) => p.programId === o.programId);
      return o.state === 'loaded' && program && o.name
        ? [{ kind: o.kind, name: o.name, programPin: `${program.pinDir}/prog` }]
        : [];
    });
  }

  recordFailedReconcile(seconds: number): void {
    this.reconciles.inc({ result: 'error' });
    this.reconcileDuration.observe(seconds);
  }

  /** Collectors never throw: a program gone since the last reconcile is skipped. */
  private collectProgramStats(): void {
    this.programRuns.reset();
    this.programRunSeconds.reset();
    for (const program of this.loadedPrograms) {
      try {
        const fd = openPinIfExists(program.programPin);
        if (!fd) continue;
        const info = withFds([fd], () => programInfo(fd));
        const labels = { kind: program.kind, name: program.name };
        this.programRuns.inc(labels, Number(info.runCount));
        this.programRunSeconds.inc(labels, Number(info.runTimeNs) / 1e9);
      } catch {
        // skipped this scrape
      }
    }
  }

  markReady(): void {
    this.ready = true;
  }

  isReady(): boolean {
    return this.ready;
  }
}

function splitListen(listen: string): { host: string; port: number } {
  const match = /^\[?([^\]]*)\]?:(\d+)$/.exec(listen);
  if (!match) throw new Error(`metrics.listen "${listen}" is not host:port`);
  return { host: match[1], port: Number(match[2]) };
}

/**
 * Serves /metrics, /healthz (the process answers) and /readyz (first reconcile done and the
 * kernel side usable, as `readyCheck` says).
 */
export async function startMetricsServer(
  listen: string,
  metrics: Metrics,
  logger: Logger,
  readyCheck: () => string | undefined = () => undefined,
) {
  const { host, port } = splitListen(listen);
  const server = http.createServer(async (request, response) => {
    const url = request.url?.split('?')[0];
    if (url === '/metrics') {
      response.setHeader('Content-Type', metrics.registry.contentType);
      response.end(await metrics.registry.metrics());
      return;
    }
    if (url === '/healthz') {
      response.end('ok\n');
      return;
    }
    if (url === '/readyz') {
      const problem = metrics.isReady() ? readyCheck() : 'first reconcile not done';
      response.statusCode = problem ? 503 : 200;
      response.end(problem ? `${problem}\n` : 'ready\n');
      return;
    }
    response.statusCode = 404;
    response.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new BpfdError('BPFD_E_METRICS', `metrics.listen ${listen}: ${err.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  logger.info({ listen }, 'metrics listening');
  return server;
}
