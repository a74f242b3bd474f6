import { BpfdError } from '../errors.js';

/**
 * Condition types and reasons, spelled as bpfd v0.2.x writes them so tooling built for the bpfd
 * operator reads our sidecars unchanged. bpfd sets every one of these with status "True": the
 * type names the state, and the condition listed last is the current one.
 *
 * On `BpfProgram` documents (this node's observed state of one object): `loaded` .. `unloaded`,
 * plus `bytecodeSelectorError`, which bpfd added right after v0.2.1 with the same spelling.
 *
 * On the program objects (XdpProgram, TcProgram, TracepointProgram): `notYetLoaded` ..
 * `deleteError`. bpfd's reason for NotYetLoaded is `ProgramsNotYetLoaded`; the others repeat
 * their type.
 *
 * Two types are ours, for states bpfd cannot have because the API server rejects them before
 * any controller sees them:
 * - `invalid` (`Invalid`/`invalidManifest`): the document does not parse into, or validate
 *   as, a program object. Set on the program document; the message names the field and rule.
 * - `lastKnownGood` (`LastKnownGood`/`manifestParseError`): the file no longer parses, so the
 *   node keeps running what it last applied from it. This is a type of its own rather than
 *   words inside ReconcileSuccess because it is independent of that state: the kernel can match
 *   the last good version (ReconcileSuccess) while the file in front of the operator is broken,
 *   and tools can test for it without parsing messages. The message says why the file fails
 *   and what is being kept; it disappears once the file parses again.
 */
export const CONDITION = {
  loaded: { type: 'Loaded', reason: 'bpfdLoaded' },
  notLoaded: { type: 'NotLoaded', reason: 'bpfdNotLoaded' },
  notUnloaded: { type: 'NotUnLoaded', reason: 'bpfdNotUnloaded' },
  notSelected: { type: 'NotSelected', reason: 'nodeNotSelected' },
  unloaded: { type: 'Unloaded', reason: 'bpfdUnloaded' },
  bytecodeSelectorError: { type: 'BytecodeSelectorError', reason: 'bytecodeSelectorError' },

  notYetLoaded: { type: 'NotYetLoaded', reason: 'ProgramsNotYetLoaded' },
  reconcileError: { type: 'ReconcileError', reason: 'ReconcileError' },
  reconcileSuccess: { type: 'ReconcileSuccess', reason: 'ReconcileSuccess' },
  deleteError: { type: 'DeleteError', reason: 'DeleteError' },

  invalid: { type: 'Invalid', reason: 'invalidManifest' },
  lastKnownGood: { type: 'LastKnownGood', reason: 'manifestParseError' },
} as const satisfies Record<string, { type: string; reason: string }>;

export type ConditionKind = (typeof CONDITION)[keyof typeof CONDITION];

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** A condition as callers state it; the writer supplies lastTransitionTime. */
export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** Patterns and limits from metav1.Condition's OpenAPI schema (bpfd's CRDs embed it). */
const TYPE_PATTERN =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/;
const TYPE_MAX_LENGTH = 316;
const REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const REASON_MAX_LENGTH = 1024;
export const MESSAGE_MAX_LENGTH = 32768;
const STATUSES: readonly string[] = ['True', 'False', 'Unknown'];

/** A condition of one of the kinds above; the message must say what happened, specifically. */
export function newCondition(
  kind: ConditionKind,
  message: string,
  status: ConditionStatus = 'True',
): ConditionInput {
  return { type: kind.type, status, reason: kind.reason, message };
}

/**
 * Throws a BpfdError (`BPFD_E_STATUS`) naming `where` when a condition would not validate
 * against metav1.Condition, has no message, or repeats a type (conditions are a map by type).
 */
export function checkConditions(conditions: readonly ConditionInput[], where: string): void {
  const seenTypes = new Set<string>();

  for (const condition of conditions) {
    const problem = conditionProblem(condition);
    if (problem) throw statusError(`${where}: condition ${condition.type}: ${problem}`);
    if (seenTypes.has(condition.type)) {
      throw statusError(`${where}: condition type ${condition.type} appears more than once`);
    }
    seenTypes.add(condition.type);
  }
}

function conditionProblem(condition: ConditionInput): string | undefined {
  const { type, status, reason, message, observedGeneration } = condition;

  if (type.length > TYPE_MAX_LENGTH || !TYPE_PATTERN.test(type)) {
    return `type must match ${TYPE_PATTERN.source}`;
  }
  if (!STATUSES.includes(status)) return `status must be True, False or Unknown, not "${status}"`;
  if (reason.length > REASON_MAX_LENGTH || !REASON_PATTERN.test(reason)) {
    return `reason "${reason}" must match ${REASON_PATTERN.source}`;
  }
  if (message.trim() === '') return 'message must say what happened';
  if (observedGeneration !== undefined && !isGeneration(observedGeneration)) {
    return `observedGeneration must be a non-negative integer, not ${observedGeneration}`;
  }
  return undefined;
}

export function isGeneration(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/**
 * Adds lastTransitionTime to each condition: the previous one's time when a condition of the
 * same type had the same status and reason (a new message alone is no transition), else `now`.
 */
export function stampConditions(
  conditions: readonly ConditionInput[],
  previous: readonly Condition[],
  now: string,
  generation: number | undefined,
): Condition[] {
  return conditions.map((condition) => {
    const before = previous.find((candidate) => candidate.type === condition.type);
    const unchanged =
      before !== undefined &&
      before.status === condition.status &&
      before.reason === condition.reason;
    const observedGeneration = condition.observedGeneration ?? generation;

    return {
      type: condition.type,
      status: condition.status,
      ...(observedGeneration === undefined ? {} : { observedGeneration }),
      lastTransitionTime: unchanged ? before.lastTransitionTime : now,
      reason: condition.reason,
      message: clampMessage(condition.message),
    };
  });
}

/** RFC 3339 in UTC with whole seconds, as metav1.Time serialises. */
export function formatTime(time: Date): string {
  return time.toISOString().replace(/\.\d+Z$/, 'Z');
}

function clampMessage(message: string): string {
  if (message.length <= MESSAGE_MAX_LENGTH) return message;

  // Keep both ends: the start names the object, the end holds the tail of a verifier log.
  const marker = '\n[... cut to fit the 32768-character limit ...]\n';
  const half = Math.floor((MESSAGE_MAX_LENGTH - marker.length) / 2);
  return message.slice(0, half) + marker + message.slice(message.length - half);
}

export function statusError(message: string): BpfdError {
  return new BpfdError('BPFD_E_STATUS', message);
}
