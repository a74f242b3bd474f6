/**
 * Turns one reconcile's outcome into status documents: per manifest file, per document, the
 * program object's conditions and this node's BpfProgram.
 */
import type { ParsedFile } from '../api/index.js';
import { BytecodeError, describeHook } from '../kernel/index.js';
import {
  CONDITION,
  newCondition,
  type ConditionInput,
  type ObjectStatus,
} from '../status/index.js';
import type { FileView } from '../watcher/index.js';
import type { DesiredObject } from './desired.js';
import type { ExecutionReport } from './executor.js';
import type { ObservedProgram, ObservedState } from './types.js';

export type ObjectState = 'loaded' | 'notLoaded' | 'notSelected' | 'invalid';

export interface ObjectOutcome {
  file: string;
  index: number;
  kind: string;
  name?: string;
  state: ObjectState;
  message: string;
  programId?: number;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Built {
  status: ObjectStatus;
  outcome: ObjectOutcome;
}

function invalidStatus(
  file: ParsedFile,
  index: number,
  kind: string,
  name: string | undefined,
  message: string,
): Built {
  return {
    status: {
      index,
      kind,
      name,
      objectConditions: [newCondition(CONDITION.invalid, message)],
    },
    outcome: { file: file.file, index, kind, name, state: 'invalid', message },
  };
}

function loadedMessage(
  object: DesiredObject,
  programId: number,
  observed: ObservedState,
): { message: string; annotations: Record<string, string> } {
  const program = object.program!;
  const annotations: Record<string, string> = {
    'bpfd.io/bytecode-digest': program.load.bytecodeDigest,
    'bpfd.io/pin-dir': program.pinDir,
  };
  if (program.load.image) {
    annotations['bpfd.io/image'] = program.load.image.reference;
    annotations['bpfd.io/image-digest'] = program.load.image.manifestDigest;
  }
  if (program.tracepoint) {
    annotations['bpfd.io/attach-point'] = `tracepoint/${program.tracepoint}`;
    return {
      message: `program id ${programId} attached to tracepoint ${program.tracepoint}`,
      annotations,
    };
  }

  const hook = program.attach!.hook;
  const dispatcher = observed.dispatchers.find(
    (d) => d.hook.kind === hook.kind && d.hook.ifindex === hook.ifindex,
  );
  const position = dispatcher ? dispatcher.chainIds.indexOf(programId) + 1 : 0;
  annotations['bpfd.io/attach-point'] = describeHook(hook);
  annotations['bpfd.io/priority'] = String(program.attach!.priority);
  if (dispatcher) {
    annotations['bpfd.io/chain-position'] = `${position}/${dispatcher.chainIds.length}`;
    annotations['bpfd.io/dispatcher-id'] = String(dispatcher.current?.programId ?? '');
  }
  if (dispatcher?.xdpMode) annotations['bpfd.io/xdp-mode'] = dispatcher.xdpMode;
  return {
    message:
      `program id ${programId} runs at position ${position} of ${dispatcher?.chainIds.length ?? 0} ` +
      `on ${describeHook(hook)} (priority ${program.attach!.priority})`,
    annotations,
  };
}

/** The observed programs that have a kernel program, by pin dir and by program id. */
interface LoadedPrograms {
  byPinDir: Map<string, ObservedProgram>;
  byId: Map<number, ObservedProgram>;
}

function indexLoaded(observed: ObservedState): LoadedPrograms {
  const loaded: LoadedPrograms = { byPinDir: new Map(), byId: new Map() };
  for (const program of observed.programs) {
    if (program.programId === undefined) continue;
    if (!loaded.byPinDir.has(program.pinDir)) loaded.byPinDir.set(program.pinDir, program);
    if (!loaded.byId.has(program.programId)) loaded.byId.set(program.programId, program);
  }
  return loaded;
}

/** The status of one effective object after the kernel work. */
function objectStatus(
  object: DesiredObject,
  nodeName: string,
  execution: ExecutionReport,
  observed: ObservedState,
  loaded: LoadedPrograms,
  rejected: Map<string, string>,
): Built {
  const { ref } = object;
  const objectConditions: ConditionInput[] = [];
  if (ref.retainedBecause) {
    objectConditions.push(
      newCondition(
        CONDITION.lastKnownGood,
        `the current text is not used (${ref.retainedBecause}); the last good version stays applied`,
      ),
    );
  }
  const base = { index: ref.index, kind: ref.kind, name: ref.name, generation: ref.generation };
  const outcome = { file: ref.file, index: ref.index, kind: ref.kind, name: ref.name };
  const bpfProgram = (
    conditions: ConditionInput[],
    programs = {},
    annotations?: Record<string, string>,
  ) => ({
    type: object.kindShort,
    programs,
    annotations,
    conditions,
  });

  if (object.blocker) {
    const { reason, message } = object.blocker;
    if (reason === 'duplicate' || reason === 'unsafe') {
      objectConditions.push(newCondition(CONDITION.invalid, message));
      return {
        status: { ...base, objectConditions },
        outcome: { ...outcome, state: 'invalid', message },
      };
    }
    if (reason === 'notSelected') {
      objectConditions.push(
        newCondition(CONDITION.reconcileSuccess, `nothing to load on ${nodeName}: ${message}`),
      );
      return {
        status: {
          ...base,
          objectConditions,
          bpfProgram: bpfProgram([newCondition(CONDITION.notSelected, message)]),
        },
        outcome: { ...outcome, state: 'notSelected', message },
      };
    }
    const bytecodeProblem =
      reason === 'bytecode' || (object.blocker.reason === 'loadFailed' && object.blocker.bytecode);
    const kind = bytecodeProblem ? CONDITION.bytecodeSelectorError : CONDITION.notLoaded;
    const waiting = object.program ? loaded.byPinDir.get(object.program.pinDir) : undefined;
    const fullMessage =
      waiting && reason === 'waitingForInterface'
        ? `${message} (program id ${waiting.programId} is loaded)`
        : message;
    objectConditions.push(
      newCondition(
        reason === 'waitingForInterface' ? CONDITION.notYetLoaded : CONDITION.reconcileError,
        fullMessage,
      ),
    );
    const programs = waiting ? { [String(waiting.programId)]: waiting.maps } : {};
    return {
      status: {
        ...base,
        objectConditions,
        bpfProgram: bpfProgram([newCondition(kind, fullMessage)], programs),
      },
      outcome: { ...outcome, state: 'notLoaded', message: fullMessage },
    };
  }

  const program = object.program!;
  const error = execution.errors.get(program.key);
  const rejection = rejected.get(program.key);
  const current = loaded.byPinDir.get(program.pinDir);
  if (error !== undefined || rejection || !current) {
    let message =
      rejection ??
      (error !== undefined ? errorMessage(error) : 'program is not pinned after reconcile');
    const kept = execution.keptPrevious.get(program.key);
    if (kept !== undefined) message += `; the previous version (program id ${kept}) keeps running`;
    const keptProgram = kept === undefined ? undefined : loaded.byId.get(kept);
    const programs = keptProgram ? { [String(kept)]: keptProgram.maps } : {};
    const kind =
      error instanceof BytecodeError ? CONDITION.bytecodeSelectorError : CONDITION.notLoaded;
    objectConditions.push(newCondition(CONDITION.reconcileError, message));
    return {
      status: {
        ...base,
        objectConditions,
        bpfProgram: bpfProgram([newCondition(kind, message)], programs),
      },
      outcome: { ...outcome, state: 'notLoaded', message },
    };
  }

  const programId = current.programId!;
  const { message, annotations } = loadedMessage(object, programId, observed);
  objectConditions.push(
    newCondition(CONDITION.reconcileSuccess, `loaded on ${nodeName}: ${message}`),
  );
  return {
    status: {
      ...base,
      objectConditions,
      bpfProgram: bpfProgram(
        [newCondition(CONDITION.loaded, message)],
        { [String(programId)]: current.maps },
        annotations,
      ),
    },
    outcome: { ...outcome, state: 'loaded', message, programId },
  };
}

/** Per file: the status documents to write, and each document's outcome. */
export function buildFileStatuses(
  views: FileView[],
  objects: DesiredObject[],
  nodeName: string,
  execution: ExecutionReport,
  observed: ObservedState,
  rejected: Map<string, string>,
): Map<string, { statuses: ObjectStatus[]; outcomes: ObjectOutcome[] }> {
  const objectsByFile = new Map<string, DesiredObject[]>();
  for (const object of objects) {
    const list = objectsByFile.get(object.ref.file) ?? [];
    list.push(object);
    objectsByFile.set(object.ref.file, list);
  }
  const loaded = indexLoaded(observed);
  const byFile = new Map<string, { statuses: ObjectStatus[]; outcomes: ObjectOutcome[] }>();
  for (const view of views) {
    const built: Built[] = [];
    const effectiveIndexes = new Set<number>();
    for (const object of objectsByFile.get(view.file) ?? []) {
      built.push(objectStatus(object, nodeName, execution, observed, loaded, rejected));
      effectiveIndexes.add(object.ref.index);
    }

    const { parsed } = view;
    if (parsed.fileError && built.length === 0) {
      built.push(invalidStatus(parsed, 0, '', undefined, parsed.fileError.message));
    }
    for (const document of parsed.documents) {
      if (document.errors.length === 0 || effectiveIndexes.has(document.index)) continue;
      const message = document.errors.map((e) => e.message).join('; ');
      built.push(
        invalidStatus(parsed, document.index, document.kind ?? '', document.name, message),
      );
    }

    built.sort((a, b) => a.status.index - b.status.index);
    byFile.set(view.file, {
      statuses: dedupeIndexes(built.map((b) => b.status)),
      outcomes: built.map((b) => b.outcome),
    });
  }
  return byFile;
}

/** A retained object and the invalid text at the same index both report; keep the object. */
function dedupeIndexes(statuses: ObjectStatus[]): ObjectStatus[] {
  const seen = new Set<number>();
  return statuses.filter((status) => {
    if (seen.has(status.index)) return false;
    seen.add(status.index);
    return true;
  });
}
