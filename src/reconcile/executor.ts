/**
 * The executor: carries out a plan on the kernel, one action at a time. A failed action is
 * recorded against the objects it concerns and the rest of the plan goes on, so one bad object
 * never blocks the others. When a new version of a program fails to load, the version already
 * running stays in its hook (make-before-break).
 */
import fs from 'node:fs';
import path from 'node:path';

import {
  attachTracepoint,
  describeHook,
  installChain,
  openPin,
  pinObject,
  programPinPath,
  removeDispatcher,
  removePins,
  removeStaleRevisions,
  withFds,
  type XdpMode,
  loadProgram,
} from '../kernel/index.js';
import { faultPoint } from '../fault.js';
import { chainHash } from './planner.js';
import type { Action, ChainMember, ObservedProgram, ObservedState, Plan } from './types.js';

export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface ExecutorOptions {
  xdpModeFor(ifname: string): XdpMode;
  logger: Logger;
}

export interface ExecutionReport {
  /** key → the error that concerns that object */
  errors: Map<string, unknown>;
  /** key → id of the older version kept running because the new one failed */
  keptPrevious: Map<string, number>;
  /** Actions that changed the kernel. */
  applied: Array<{ type: Action['type']; ok: boolean }>;
}

function previousVersion(observed: ObservedState, key: string): ObservedProgram | undefined {
  return observed.programs.find((p) => p.key === key && p.programId !== undefined);
}

/** Chain members as they can run now: a failed new version is replaced by the running one. */
function runnableMembers(
  members: ChainMember[],
  report: ExecutionReport,
  observed: ObservedState,
): ChainMember[] {
  const runnable: ChainMember[] = [];
  for (const member of members) {
    if (!report.errors.has(member.key)) {
      runnable.push(member);
      continue;
    }
    const previous = previousVersion(observed, member.key);
    if (!previous || previous.pinDir === member.pinDir) continue;
    report.keptPrevious.set(member.key, previous.programId!);
    runnable.push({ ...member, specHash: previous.specHash, pinDir: previous.pinDir });
  }
  return runnable;
}

export class Executor {
  constructor(
    private readonly root: string,
    private readonly options: ExecutorOptions,
  ) {}

  async execute(plan: Plan, observed: ObservedState): Promise<ExecutionReport> {
    const report: ExecutionReport = {
      errors: new Map(),
      keptPrevious: new Map(),
      applied: [],
    };
    for (const action of plan.actions) {
      try {
        await this.apply(action, report, observed);
        report.applied.push({ type: action.type, ok: true });
      } catch (err) {
        report.applied.push({ type: action.type, ok: false });
        this.recordFailure(action, err, report, observed);
      }
    }
    return report;
  }

  private recordFailure(
    action: Action,
    err: unknown,
    report: ExecutionReport,
    observed: ObservedState,
  ): void {
    const { logger } = this.options;
    const message = err instanceof Error ? err.message : String(err);
    switch (action.type) {
      case 'load':
      case 'attachTracepoint': {
        report.errors.set(action.program.key, err);
        const previous = previousVersion(observed, action.program.key);
        if (previous && previous.pinDir !== action.program.pinDir) {
          report.keptPrevious.set(action.program.key, previous.programId!);
        }
        logger.error(
          { object: action.program.key, action: action.type, err: message },
          'action failed',
        );
        return;
      }
      case 'installChain':
        for (const member of action.members) {
          if (!report.errors.has(member.key)) report.errors.set(member.key, err);
        }
        logger.error({ hook: describeHook(action.hook), err: message }, 'installing chain failed');
        return;
      default:
        logger.error(
          { action: action.type, err: message },
          'cleanup failed; retried on the next reconcile',
        );
    }
  }

  private async apply(action: Action, report: ExecutionReport, observed: ObservedState) {
    const { logger } = this.options;
    switch (action.type) {
      case 'load': {
        const { program } = action;
        removePins(program.pinDir);
        let loaded: ReturnType<typeof loadProgram>;
        try {
          loaded = loadProgram({
            ...program.load,
            pinDir: program.pinDir,
            subject: `${program.ref.kind}/${program.ref.name}`,
          });
        } catch (err) {
          removeEmptyParent(program.pinDir);
          throw err;
        }
        logger.info(
          {
            object: program.key,
            file: program.ref.file,
            progId: loaded.id,
            pinDir: program.pinDir,
          },
          'program loaded',
        );
        faultPoint('after-load');
        return;
      }
      case 'attachTracepoint': {
        const { program } = action;
        if (report.errors.has(program.key)) return;
        const linkPin = path.join(program.pinDir, 'link');
        removePins(linkPin);
        const prog = openPin(programPinPath(program.pinDir));
        const link = withFds([prog], () => attachTracepoint(prog, program.tracepoint!));
        withFds([link], () => pinObject(link, linkPin));
        faultPoint('after-tracepoint-attach');
        logger.info({ object: program.key, tracepoint: program.tracepoint }, 'tracepoint attached');
        return;
      }
      case 'installChain':
        await this.installChain(action, report, observed);
        return;
      case 'removeDispatcher':
        await removeDispatcher(this.root, action.dispatcher.hook);
        logger.info(
          { hook: `${action.dispatcher.hook.kind}/${action.dispatcher.hook.ifindex}` },
          'dispatcher removed',
        );
        return;
      case 'removeStaleRevisions':
        for (const dir of removeStaleRevisions(action.dispatcher)) {
          logger.info({ revision: dir }, 'stale dispatcher revision removed');
        }
        return;
      case 'unload': {
        const { program } = action;
        // The running version stays while its replacement cannot load.
        if (report.keptPrevious.get(program.key) === program.programId) return;
        if (report.errors.has(program.key) && previousVersion(observed, program.key) === program)
          return;
        faultPoint('before-unload');
        removePins(program.pinDir);
        removeEmptyParent(program.pinDir);
        logger.info({ object: program.key, progId: program.programId }, 'program unloaded');
        return;
      }
    }
  }

  private async installChain(
    action: Extract<Action, { type: 'installChain' }>,
    report: ExecutionReport,
    observed: ObservedState,
  ): Promise<void> {
    const { hook } = action;
    const members = runnableMembers(action.members, report, observed);
    if (members.length === 0) {
      await removeDispatcher(this.root, hook);
      return;
    }
    const entries = members.map((m) => ({
      programPin: programPinPath(m.pinDir),
      proceedOn: m.proceedOn,
    }));
    const result = await installChain(
      this.root,
      hook,
      entries,
      chainHash(members),
      this.options.xdpModeFor(hook.ifname),
    );
    this.options.logger.info(
      {
        hook: describeHook(hook),
        revision: result.revision,
        progId: result.dispatcherId,
        chain: members.map((m) => m.key),
      },
      'dispatcher chain installed',
    );
  }
}

/** Drops `<kind>/<name>/` once its last version is gone. */
function removeEmptyParent(pinDir: string): void {
  try {
    fs.rmdirSync(path.dirname(pinDir));
  } catch {
    // another version of the object still lives there
  }
}
