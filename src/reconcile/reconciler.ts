/**
 * One reconcile: manifests (a watcher snapshot) and the pin tree in, kernel changes and status
 * sidecars out. Level-triggered and idempotent: a second run with nothing changed plans no
 * action. Callers serialise runs (see ReconcileLoop).
 */
import crypto from 'node:crypto';

import { builtinNodeLabels, type Config } from '../config/index.js';
import { BpfdError } from '../errors.js';
import type { StatusWriter } from '../status/index.js';
import type { ManifestSnapshot } from '../watcher/index.js';
import { ImageStore } from '../bytecode/index.js';
import {
  buildDesired,
  forgetBytecodeDigests,
  type DesiredContext,
  type DesiredObject,
  type ImageResolver,
} from './desired.js';
import { BytecodeError } from '../kernel/index.js';
import { Executor, type ExecutionReport, type Logger } from './executor.js';
import { forgetPinTreeReads, observe } from './observer.js';
import { plan } from './planner.js';
import { buildFileStatuses, type ObjectOutcome } from './report.js';
import type { DesiredProgram, ObservedProgram, ObservedState, Plan } from './types.js';

export interface ReconcileResult {
  plan: Plan;
  execution: ExecutionReport;
  outcomes: ObjectOutcome[];
  /** Some object waits for something that may come by itself (an interface) or failed. */
  retryWanted: boolean;
  /**
   * Identifies the desired state (programs, versions, hooks, order). Actions planned while it
   * equals the one of the last clean run repair drift: someone changed the kernel, not the files.
   */
  desiredFingerprint: string;
  /** Interface names some object waits for. */
  awaitedInterfaces: string[];
  observed: ObservedState;
}

export interface PlanPreview {
  plan: Plan;
  objects: DesiredObject[];
  observed: ObservedState;
}

function desiredPrograms(objects: DesiredObject[]): DesiredProgram[] {
  return objects.flatMap((object) => (object.program ? [object.program] : []));
}

/** The image store of this node's config (cache under `<stateDir>/images`). */
export function imageStoreFor(config: Config, logger?: Logger): ImageStore {
  return new ImageStore({
    stateDir: config.stateDir,
    secretsDir: config.secretsDir,
    insecureRegistries: config.registries.insecure,
    caFiles: config.registries.caFiles,
    logger,
  });
}

/**
 * Desired state and plan without touching the kernel (for `bpfd plan` and for reconcile);
 * images may be pulled into the cache.
 */
export async function preview(
  snapshot: ManifestSnapshot,
  config: Config,
  images: ImageResolver,
  failedLoad?: DesiredContext['failedLoad'],
): Promise<PlanPreview> {
  const documents = snapshot.files.flatMap((file) => file.effective);
  const observed = observe(config.bpffsRoot);
  const running = new Map<string, ObservedProgram>();
  for (const program of observed.programs) {
    if (program.programId !== undefined && !running.has(program.key)) {
      running.set(program.key, program);
    }
  }
  const objects = await buildDesired(documents, {
    config,
    labels: builtinNodeLabels(config),
    images,
    running: (key) => running.get(key),
    failedLoad,
  });
  return { plan: plan(desiredPrograms(objects), observed), objects, observed };
}

/**
 * Errors that the same input will always hit again (the verifier's verdict, a program missing
 * from the object): retried only when the input changes, not on the backoff timer.
 */
const TERMINAL_CODES = new Set([
  'BPFD_E_VERIFIER',
  'BPFD_E_BYTECODE_OPEN',
  'BPFD_E_NO_PROGRAM',
  'BPFD_E_AMBIGUOUS_PROGRAM',
  'BPFD_E_GLOBALDATA',
  'BPFD_E_CHAIN_FULL',
]);

function isTerminal(err: unknown): boolean {
  return err instanceof BpfdError && TERMINAL_CODES.has(err.code);
}

function fingerprint(objects: DesiredObject[]): string {
  const parts = objects.map((o) => [
    o.ref.kind,
    o.ref.name,
    o.program?.specHash,
    o.program?.attach && [
      o.program.attach.hook.kind,
      o.program.attach.hook.ifindex,
      o.program.attach.priority,
      o.program.attach.proceedOn,
    ],
    o.blocker?.reason,
  ]);
  return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export class Reconciler {
  private readonly executor: Executor;
  private readonly images: ImageResolver;
  /** Program versions (pin dirs) whose load failed for good, with why. */
  private readonly failedLoads = new Map<string, { message: string; bytecode: boolean }>();
  private readonly imageStore: ImageStore;
  /** Image manifest digests the last reconcile used; undefined when it could not tell. */
  private imagesInUse: Set<string> | undefined;
  private readonly knownFiles = new Set<string>();
  /** What each sidecar was last written from. */
  private readonly writtenStatus = new Map<string, string>();
  /** The last run whose statuses were all written, with what they were built from. */
  private lastStatusRound:
    { snapshot: ManifestSnapshot; inputs: string; outcomes: ObjectOutcome[] } | undefined;

  constructor(
    private readonly config: Config,
    private readonly statusWriter: StatusWriter,
    private readonly logger: Logger,
    private readonly onImageResolved: (ok: boolean) => void = () => undefined,
  ) {
    const store = imageStoreFor(config, logger);
    this.imageStore = store;
    this.images = {
      resolve: (request) =>
        store.resolve(request).then(
          (resolved) => (onImageResolved(true), resolved),
          (err: unknown) => {
            onImageResolved(false);
            throw err;
          },
        ),
    };
    this.executor = new Executor(config.bpffsRoot, {
      logger,
      xdpModeFor: (ifname) => config.xdpModeByInterface[ifname] ?? config.xdpMode,
    });
  }

  async reconcile(snapshot: ManifestSnapshot): Promise<ReconcileResult> {
    const {
      plan: planned,
      objects,
      observed: before,
    } = await preview(snapshot, this.config, this.images, (pinDir) => this.failedLoads.get(pinDir));
    // A missing manifest dir says nothing about what should go: never unload because of it.
    if (snapshot.dirMissing) {
      planned.actions = planned.actions.filter(
        (action) => action.type !== 'unload' && action.type !== 'removeDispatcher',
      );
    }
    const execution = await this.executor.execute(planned, before);
    const observed = planned.actions.length > 0 ? observe(this.config.bpffsRoot) : before;

    const outcomes = await this.reportStatus(snapshot, objects, planned, execution, observed);

    this.rememberFailedLoads(planned, execution, objects);

    // With an image that could not be resolved, its cached copy may still be wanted.
    const unresolved = objects.some((o) => o.blocker?.reason === 'bytecode');
    this.imagesInUse = unresolved
      ? undefined
      : new Set(objects.flatMap((o) => o.program?.load.image?.manifestDigest ?? []));

    const retryWanted =
      [...execution.errors.values()].some((err) => !isTerminal(err)) ||
      objects.some((o) => o.blocker?.reason === 'bytecode');
    const awaitedInterfaces = objects.flatMap((o) =>
      o.blocker?.reason === 'waitingForInterface' && o.blocker.ifname ? [o.blocker.ifname] : [],
    );
    return {
      plan: planned,
      execution,
      outcomes,
      retryWanted,
      awaitedInterfaces,
      observed,
      desiredFingerprint: fingerprint(objects),
    };
  }

  /**
   * Builds and writes every file's status. When nothing at all changed since the last run (the
   * same manifest view, desired objects and kernel state, and nothing done), the statuses would
   * be the same too: the last outcomes stand and nothing is built or compared.
   */
  private async reportStatus(
    snapshot: ManifestSnapshot,
    objects: DesiredObject[],
    planned: Plan,
    execution: ExecutionReport,
    observed: ObservedState,
  ): Promise<ObjectOutcome[]> {
    const quiet = planned.actions.length === 0 && planned.rejected.size === 0;
    const inputs = quiet ? JSON.stringify([objects, observed]) : undefined;
    const last = this.lastStatusRound;
    if (last && inputs !== undefined && last.snapshot === snapshot && last.inputs === inputs) {
      return last.outcomes;
    }
    this.lastStatusRound = undefined;

    const statuses = buildFileStatuses(
      snapshot.files,
      objects,
      this.config.nodeName,
      execution,
      observed,
      planned.rejected,
    );
    const outcomes: ObjectOutcome[] = [];
    for (const { outcomes: fileOutcomes } of statuses.values()) outcomes.push(...fileOutcomes);
    // While the manifest dir is gone (a swap in progress) its files look deleted to the status
    // writer, which would drop their sidecars: leave status alone until the dir is back.
    if (snapshot.dirMissing) return outcomes;

    let written = true;
    for (const [file, { statuses: fileStatuses }] of statuses) {
      written = (await this.writeStatus(file, fileStatuses)) && written;
    }
    await this.removeGoneSidecars(new Set(statuses.keys()));
    if (written && inputs !== undefined) this.lastStatusRound = { snapshot, inputs, outcomes };
    return outcomes;
  }

  /** The same reconciler with a reloaded config; what it learnt about failed loads is kept. */
  reconfigured(config: Config): Reconciler {
    const next = new Reconciler(config, this.statusWriter, this.logger, this.onImageResolved);
    for (const [pinDir, failure] of this.failedLoads) next.failedLoads.set(pinDir, failure);
    return next;
  }

  private rememberFailedLoads(planned: Plan, execution: ExecutionReport, objects: DesiredObject[]) {
    // Forget versions no manifest asks for any more.
    const asked = new Set(
      objects.flatMap((o) => [
        ...(o.program ? [o.program.pinDir] : []),
        ...(o.blocker?.reason === 'loadFailed' ? [o.blocker.pinDir] : []),
      ]),
    );
    for (const pinDir of this.failedLoads.keys()) {
      if (!asked.has(pinDir)) this.failedLoads.delete(pinDir);
    }
    for (const action of planned.actions) {
      if (action.type !== 'load') continue;
      const err = execution.errors.get(action.program.key);
      if (!isTerminal(err)) continue;
      this.failedLoads.set(action.program.pinDir, {
        message: err instanceof Error ? err.message : String(err),
        bytecode: err instanceof BytecodeError,
      });
    }
  }

  /** Removes cached images no object used in the last reconcile (run on the resync schedule). */
  async collectImageGarbage(): Promise<string[]> {
    if (!this.imagesInUse) return [];
    return this.imageStore.collectGarbage(this.imagesInUse);
  }

  /**
   * Makes the next reconcile read everything again: every dir of the pin tree, every bytecode
   * file (hashed anew), and every sidecar compared with the disk (the resync and SIGHUP do, to
   * repair what was changed by hand). In between, a pin dir or bytecode file whose times did
   * not move is not read again, and a status equal to the last one written is not rendered
   * again.
   */
  forgetShortcuts(): void {
    this.writtenStatus.clear();
    this.lastStatusRound = undefined;
    forgetPinTreeReads();
    forgetBytecodeDigests();
  }

  /** False when the sidecar could not be written (the next run tries again). */
  private async writeStatus(
    file: string,
    statuses: Parameters<StatusWriter['write']>[1],
  ): Promise<boolean> {
    this.knownFiles.add(file);
    const rendered = JSON.stringify(statuses);
    if (this.writtenStatus.get(file) === rendered) return true;
    try {
      if (await this.statusWriter.write(file, statuses)) {
        this.logger.debug({ file }, 'status written');
      }
      this.writtenStatus.set(file, rendered);
      return true;
    } catch (err) {
      // A full disk or a read-only dir must not stop the kernel side; the next run retries.
      this.logger.error(
        { file, err: err instanceof Error ? err.message : String(err) },
        'cannot write status',
      );
      return false;
    }
  }

  private async removeGoneSidecars(current: Set<string>) {
    for (const file of [...this.knownFiles]) {
      if (current.has(file)) continue;
      this.knownFiles.delete(file);
      this.writtenStatus.delete(file);
      try {
        await this.statusWriter.remove(file);
      } catch (err) {
        this.logger.warn(
          { file, err: err instanceof Error ? err.message : String(err) },
          'cannot remove status',
        );
      }
    }
  }
}
