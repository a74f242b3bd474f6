/**
 * Prometheus metrics and the health endpoints. All metrics are declared here, on a registry of
 * their own (tests create as many as they like).
 */
import http from 'node:http';

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { Logger } from '../reconcile/index.js';
import type { ReconcileResult } from '../reconcile/index.js';

const OBJECT_STATES = ['loaded', 'notLoaded', 'notSelected', 'invalid'] as const;
const KINDS = ['XdpProgram', 'TcProgram', 'TracepointProgram', ''] as const;

export class Metrics {
  readonly registry = new Registry();
  private ready = false;

  readonly reconciles = new Counter({
    name: 'bpfd_reconcile_total',
    help: 'Reconcile runs by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'bpfd_reconcile_duration_seconds',
    help: 'Time a reconcile run took',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
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
  readonly lastSuccess = new Gauge({
    name: 'bpfd_last_successful_reconcile_timestamp_seconds',
    help: 'When the last reconcile without errors finished',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const result of ['success', 'error']) this.reconciles.inc({ result }, 0);
    for (const action of ['load', 'attachTracepoint', 'installChain', 'removeDispatcher', 'removeStaleRevisions', 'unload']) {
      for (const result of ['success', 'error']) this.actions.inc({ action, result }, 0);
    }
    for (const kind of KINDS) for (const state of OBJECT_STATES) this.objects.set({ kind, state }, 0);
  }

  recordReconcile(result: ReconcileResult, seconds: number): void {
    const ok = result.execution.errors.size === 0;
    this.reconciles.inc({ result: ok ? 'success' : 'error' });
    this.reconcileDuration.observe(seconds);
    for (const applied of result.execution.applied) {
      this.actions.inc({ action: applied.type, result: applied.ok ? 'success' : 'error' });
    }
    for (const kind of KINDS) {
      for (const state of OBJECT_STATES) {
        this.objects.set({ kind, state }, result.outcomes.filter((o) => o.kind === kind && o.state === state).length);
      }
    }
    if (ok) this.lastSuccess.setToCurrentTime();
  }

  recordFailedReconcile(seconds: number): void {
    this.reconciles.inc({ result: 'error' });
    this.reconcileDuration.observe(seconds);
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

/** Serves /metrics, /healthz (process alive) and /readyz (first reconcile done). */
export async function startMetricsServer(listen: string, metrics: Metrics, logger: Logger) {
  const { host, port } = splitListen(listen);
  const server = http.createServer(async (request, response) => {
    const url = request.url?.split('?')[0];
    if (url === '/metrics') {
      response.setHeader('Content-Type', metrics.registry.contentType);
      response.end(await metrics.registry.metrics());
    } else if (url === '/healthz') {
      response.end('ok\n');
    } else if (url === '/readyz') {
      response.statusCode = metrics.isReady() ? 200 : 503;
      response.end(metrics.isReady() ? 'ready\n' : 'first reconcile not done\n');
    } else {
      response.statusCode = 404;
      response.end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  logger.info({ listen }, 'metrics listening');
  return server;
}
