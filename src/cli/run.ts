/**
 * `bpfd run`: the daemon. Watches the manifest dir, reconciles on every change, on the resync
 * schedule, on SIGHUP and when an awaited interface appears; serves metrics; leaves every
 * program pinned when it stops.
 */
import path from 'node:path';

import cron from 'node-cron';

import { loadConfig, type Config, type ConfigOverrides } from '../config/index.js';
import {
  acquireRootLock,
  ensureBpffsRoot,
  ensureTracefs,
  interfaceIndex,
  isBpffs,
  notifySystemd,
  watchLinks,
  setLibbpfLogger,
  watchdogIntervalMs,
} from '../kernel/index.js';
import { Metrics, startMetricsServer } from '../metrics/index.js';
import { ReconcileLoop, Reconciler, type ReconcileResult } from '../reconcile/index.js';
import { StatusWriter } from '../status/index.js';
import { ManifestWatcher } from '../watcher/index.js';
import { createLogger, type Logger } from './logger.js';

const INTERFACE_CHECK_MS = 1000;

export interface RunOptions {
  configFile?: string;
  overrides: ConfigOverrides;
  once: boolean;
  logFormat: 'json' | 'human' | 'auto';
}

function prepareKernel(config: Config, logger: Logger) {
  ensureBpffsRoot(config.bpffsRoot);
  const lock = acquireRootLock(config.bpffsRoot);
  try {
    ensureTracefs();
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'tracefs is not available; tracepoints will fail');
  }
  return lock;
}

/** --once: one reconcile; exit 1 when a selected object is not loaded (or a document is invalid). */
function onceExitCode(result: ReconcileResult, logger: Logger): number {
  const failed = result.outcomes.filter((o) => o.state === 'notLoaded' || o.state === 'invalid');
  for (const outcome of failed) {
    logger.warn(
      { file: outcome.file, document: outcome.index, kind: outcome.kind, name: outcome.name },
      outcome.message,
    );
  }
  return failed.length > 0 ? 1 : 0;
}

/** Keys the running daemon is built around (lock, watcher, listener, schedule). */
const RESTART_ONLY_KEYS = ['nodeName', 'manifestDir', 'statusDir', 'bpffsRoot', 'resync'] as const;

/**
 * A reload applies every key except those that need a restart; for those the running values
 * stay, and the log says which changes wait for `systemctl restart`.
 */
function keepRestartOnlyKeys(running: Config, loaded: Config, logger: Logger): Config {
  const kept: Config = { ...loaded, metrics: running.metrics };
  const ignored: string[] =
    loaded.metrics.listen === running.metrics.listen ? [] : ['metrics.listen'];
  for (const key of RESTART_ONLY_KEYS) {
    if (loaded[key] === running[key]) continue;
    ignored.push(key);
    Object.assign(kept, { [key]: running[key] });
  }
  if (ignored.length > 0) {
    logger.error({ keys: ignored }, 'these config changes need a restart; running values kept');
  }
  return kept;
}

export function lastKnownGoodDir(config: Config): string {
  return path.join(config.stateDir, 'last-known-good');
}

export async function run(options: RunOptions): Promise<number> {
  // A daemon takes over its signals at once: until it is up they are only remembered, as the
  // default action would end it mid-way (a reload or stop sent right after `systemctl start`).
  let stopSignal: string | undefined;
  let resolveStop: (signal: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (resolveStop = resolve));
  let reload: (() => Promise<void>) | undefined;
  let reloadWanted = false;
  if (!options.once) {
    const requestStop = (signal: string) => {
      stopSignal ??= signal;
      resolveStop(signal);
    };
    process.once('SIGTERM', () => requestStop('SIGTERM'));
    process.once('SIGINT', () => requestStop('SIGINT'));
    process.on('SIGHUP', () => (reload ? void reload() : (reloadWanted = true)));
  }

  let config = await loadConfig({ file: options.configFile, overrides: options.overrides });
  const logger = createLogger(config.logLevel, options.logFormat);
  setLibbpfLogger(logger);
  const lock = prepareKernel(config, logger);

  const statusWriter = new StatusWriter({
    manifestDir: config.manifestDir,
    statusDir: config.statusDir,
    nodeName: config.nodeName,
  });
  await statusWriter.removeOrphans();
  const watcher = new ManifestWatcher({
    dir: config.manifestDir,
    logger,
    lastKnownGoodDir: lastKnownGoodDir(config),
  });
  const snapshot = await watcher.start();
  const metrics = new Metrics();
  const imageResolved = (ok: boolean) =>
    metrics.imagePulls.inc({ result: ok ? 'success' : 'error' });
  let reconciler = new Reconciler(config, statusWriter, logger, imageResolved);

  if (options.once) {
    try {
      const result = await reconciler.reconcile(snapshot);
      return onceExitCode(result, logger);
    } finally {
      await watcher.close();
      lock.release();
    }
  }

  const server = await startMetricsServer(config.metrics.listen, metrics, logger, () =>
    isBpffs(config.bpffsRoot) ? undefined : `bpffs root ${config.bpffsRoot} is not on bpffs`,
  );
  let awaited: string[] = [];
  let cleanFingerprint: string | undefined;
  const loop = new ReconcileLoop(() => reconciler.reconcile(watcher.snapshot()), {
    logger,
    onResult: (result, seconds) => {
      const drift = result.desiredFingerprint === cleanFingerprint ? result.plan.actions.length : 0;
      if (drift > 0) {
        logger.warn({ actions: drift }, 'kernel state drifted from the manifests; repaired');
      }
      metrics.recordReconcile(result, seconds, drift);
      cleanFingerprint = result.execution.errors.size === 0 ? result.desiredFingerprint : undefined;
      awaited = result.awaitedInterfaces;
    },
    onFailure: (_err, seconds) => metrics.recordFailedReconcile(seconds),
  });

  watcher.on('change', () => loop.trigger('manifests changed'));
  watcher.on('error', (err) => logger.error({ err: String(err) }, 'watcher error'));
  const resync = cron.schedule(config.resync, async () => {
    reconciler.forgetShortcuts();
    await watcher.rescan();
    loop.trigger('resync');
    await loop.idle();
    try {
      await reconciler.collectImageGarbage();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'image cache cleanup failed');
    }
  });

  // Interfaces coming, going or renamed change what can attach: react to netlink events. If
  // `ip monitor` cannot run, fall back to checking the few awaited names every second.
  let interfaceCheck: NodeJS.Timeout | undefined;
  const links = watchLinks(
    () => loop.trigger('interface change'),
    (err) => {
      if (interfaceCheck) return;
      logger.warn({ err: err.message }, 'no interface events; polling awaited interfaces');
      interfaceCheck = setInterval(() => {
        if (awaited.some((name) => interfaceIndex(name) !== undefined)) {
          loop.trigger('interface appeared');
        }
      }, INTERFACE_CHECK_MS);
    },
  );

  // SIGHUP: the config file again, then every manifest and pin dir read again, and a reconcile.
  reload = async () => {
    notifySystemd('RELOADING=1');
    try {
      const loaded = await loadConfig({ file: options.configFile, overrides: options.overrides });
      config = keepRestartOnlyKeys(config, loaded, logger);
      logger.level = config.logLevel;
      reconciler = reconciler.reconfigured(config);
      logger.info({ configFile: config.configFile }, 'configuration reloaded');
    } catch (err) {
      logger.error(
        { err: (err as Error).message },
        'configuration not reloaded; keeping the old one',
      );
    }
    reconciler.forgetShortcuts();
    await watcher.rescan();
    loop.trigger('SIGHUP');
    await loop.idle();
    logger.info({}, 'reload reconciled');
    notifySystemd('READY=1');
  };
  if (reloadWanted) void reload();

  if (!stopSignal) loop.trigger('start');
  let watchdog: NodeJS.Timeout | undefined;
  const startedUp = loop.idle().then(() => {
    if (stopSignal) return;
    metrics.markReady();
    notifySystemd(`READY=1\nSTATUS=watching ${config.manifestDir}`);
    const watchdogMs = watchdogIntervalMs();
    if (watchdogMs) watchdog = setInterval(() => notifySystemd('WATCHDOG=1'), watchdogMs);
    logger.info(
      { manifestDir: config.manifestDir, bpffsRoot: config.bpffsRoot, node: config.nodeName },
      'daemon ready',
    );
  });

  const signal = await stopRequested;
  logger.info({ signal }, 'stopping; programs stay attached and pinned');
  notifySystemd('STOPPING=1');
  loop.stop();
  resync.stop();
  clearInterval(interfaceCheck);
  links.close();
  await loop.idle();
  await startedUp;
  clearInterval(watchdog);
  await watcher.close();
  server.close();
  lock.release();
  return 0;
}
