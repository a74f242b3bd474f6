import crypto from 'node:crypto';

import yaml from 'js-yaml';

import {
  checkConditions,
  formatTime,
  isGeneration,
  stampConditions,
  statusError,
  type Condition,
  type ConditionInput,
} from './conditions.js';

export const API_VERSION = 'bpfd.io/v1alpha1';
export const BPF_PROGRAM_KIND = 'BpfProgram';

/** The label bpfd v0.2.x puts on each BpfProgram: the name of the object that owns it. */
export const OWNER_LABEL = 'ownedByProgram';
/** The node a BpfProgram describes; bpfd adds it from v0.3 and selects by it. */
export const HOSTNAME_LABEL = 'kubernetes.io/hostname';
/** Set on the status of a document that has no readable name, so readers can find it. */
export const DOCUMENT_INDEX_ANNOTATION = 'bpfd.io/document-index';

const ANNOTATION_PREFIX = 'bpfd.io/';
const PROGRAM_TYPES: readonly string[] = ['xdp', 'tc', 'tracepoint'];

/** The status of one document of a manifest file, in the file's order. */
export interface ObjectStatus {
  /** Position of the document in the file, from 0. */
  index: number;
  /** The document's kind as far as it could be read (may be empty for an unreadable one). */
  kind: string;
  /** metadata.name when it could be read. */
  name?: string;
  /** metadata.generation when the manifest sets it; becomes the conditions' observedGeneration. */
  generation?: number;
  /** Conditions of the XdpProgram/TcProgram/TracepointProgram document. */
  objectConditions: ConditionInput[];
  /** This node's BpfProgram for the object; only for documents that validated. */
  bpfProgram?: BpfProgramStatus;
}

export interface BpfProgramStatus {
  type: 'xdp' | 'tc' | 'tracepoint';
  /** Kernel program id → map name → pin path. */
  programs: Record<string, Record<string, string>>;
  /** Observed details (attach point, xdp mode, chain position, bytecode digest); `bpfd.io/` keys. */
  annotations?: Record<string, string>;
  conditions: ConditionInput[];
}

/** bpfd names the per-node object `<object name>-<node name>`. */
export function bpfProgramName(objectName: string, nodeName: string): string {
  const name = `${objectName}-${nodeName}`;
  if (name.length <= MAX_NAME_LENGTH) return name;
  // Too long for a DNS-1123 name: keep a readable start and make it unique with a hash.
  const hash = crypto.createHash('sha256').update(name).digest('hex').slice(0, 10);
  const head = name.slice(0, MAX_NAME_LENGTH - hash.length - 1).replace(/[-.]+$/, '');
  return `${head}-${hash}`;
}

const MAX_NAME_LENGTH = 253;

/** One collator for every sort: building one per comparison costs more than the sort. */
const KEY_ORDER = new Intl.Collator('en', { numeric: true });

/** Throws a BpfdError (`BPFD_E_STATUS`) for a status that would write an invalid document. */
export function checkObjectStatuses(objects: readonly ObjectStatus[], file: string): void {
  for (const object of objects) {
    const where = `${file}: document ${object.index}`;

    if (!Number.isSafeInteger(object.index) || object.index < 0) {
      throw statusError(`${file}: document index ${object.index} is not a non-negative integer`);
    }
    if (object.generation !== undefined && !isGeneration(object.generation)) {
      throw statusError(`${where}: generation ${object.generation} is not a valid generation`);
    }
    checkConditions(object.objectConditions, where);
    if (object.bpfProgram) checkBpfProgram(object, object.bpfProgram, where);
  }
}

function checkBpfProgram(object: ObjectStatus, bpfProgram: BpfProgramStatus, where: string) {
  if (!object.name) throw statusError(`${where}: a BpfProgram needs the object's name`);
  if (!PROGRAM_TYPES.includes(bpfProgram.type)) {
    throw statusError(
      `${where}: BpfProgram type "${bpfProgram.type}" is not xdp, tc or tracepoint`,
    );
  }
  for (const key of Object.keys(bpfProgram.annotations ?? {})) {
    if (!key.startsWith(ANNOTATION_PREFIX)) {
      throw statusError(`${where}: annotation "${key}" must start with ${ANNOTATION_PREFIX}`);
    }
  }
  checkConditions(bpfProgram.conditions, `${where}: BpfProgram`);
}

/** Where each previous condition list lives, so its lastTransitionTime can be carried over. */
export type PreviousConditions = ReadonlyMap<string, readonly Condition[]>;

/**
 * The sidecar's YAML: a header comment, then per object its status document and, when it
 * validated, its BpfProgram document. The object's document carries metadata and status only,
 * like a status subresource: its spec stays in the manifest. BpfProgram documents are complete
 * and validate against bpfd's BpfProgram schema. Deterministic for equal input, so an unchanged status
 * renders byte-for-byte the same text.
 */
export function renderSidecar(
  objects: readonly ObjectStatus[],
  previous: PreviousConditions,
  context: { nodeName: string; now: Date; manifestLabel: string },
): string {
  const now = formatTime(context.now);
  const documents = objects.flatMap((object) => {
    const key = objectKey(object.kind, object.name, object.index);
    const objectDocument = renderObjectDocument(object, previous.get(key) ?? [], now);
    if (!object.bpfProgram) return [objectDocument];

    const previousOfBpfProgram = previous.get(bpfProgramKey(key)) ?? [];
    const bpfProgramDocument = renderBpfProgramDocument(
      object,
      object.bpfProgram,
      context.nodeName,
      stampConditions(object.bpfProgram.conditions, previousOfBpfProgram, now, undefined),
    );
    return [objectDocument, bpfProgramDocument];
  });

  const header =
    `# Status of ${context.manifestLabel} on node ${context.nodeName}, written by ` +
    'bpfd-gitops. Edits are overwritten.\n';
  return header + documents.map((document) => '---\n' + dumpYaml(document)).join('');
}

function renderObjectDocument(object: ObjectStatus, previous: readonly Condition[], now: string) {
  const metadata: Record<string, unknown> = {};
  if (object.name) metadata.name = object.name;
  if (object.generation !== undefined) metadata.generation = object.generation;
  if (!object.name) metadata.annotations = { [DOCUMENT_INDEX_ANNOTATION]: String(object.index) };

  return {
    apiVersion: API_VERSION,
    ...(object.kind ? { kind: object.kind } : {}),
    metadata,
    status: {
      conditions: stampConditions(object.objectConditions, previous, now, object.generation),
    },
  };
}

function renderBpfProgramDocument(
  object: ObjectStatus,
  bpfProgram: BpfProgramStatus,
  nodeName: string,
  conditions: Condition[],
) {
  const ownerName = object.name!;
  const annotations = sortedRecord(bpfProgram.annotations ?? {});

  return {
    apiVersion: API_VERSION,
    kind: BPF_PROGRAM_KIND,
    metadata: {
      name: bpfProgramName(ownerName, nodeName),
      labels: { [OWNER_LABEL]: ownerName, [HOSTNAME_LABEL]: nodeName },
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: {
      node: nodeName,
      type: bpfProgram.type,
      programs: sortedPrograms(bpfProgram.programs),
    },
    status: { conditions },
  };
}

/**
 * The conditions of a previous sidecar, keyed like renderSidecar keys the new ones. A BpfProgram
 * document belongs to the object document before it, which is how renderSidecar lays them out.
 */
export function previousConditionsOf(documents: readonly unknown[]): PreviousConditions {
  const byKey = new Map<string, Condition[]>();
  let ownerKey: string | undefined;

  for (const document of documents) {
    if (!isRecord(document)) continue;
    const conditions = conditionsOf(document);

    if (document.kind === BPF_PROGRAM_KIND) {
      if (ownerKey !== undefined) byKey.set(bpfProgramKey(ownerKey), conditions);
      ownerKey = undefined;
      continue;
    }
    ownerKey = previousObjectKey(document);
    if (ownerKey !== undefined) byKey.set(ownerKey, conditions);
  }
  return byKey;
}

function previousObjectKey(document: Record<string, unknown>): string | undefined {
  const kind = typeof document.kind === 'string' ? document.kind : '';
  const metadata = isRecord(document.metadata) ? document.metadata : {};
  if (typeof metadata.name === 'string' && metadata.name !== '') {
    return objectKey(kind, metadata.name, 0);
  }

  const annotations = isRecord(metadata.annotations) ? metadata.annotations : {};
  const index = Number(annotations[DOCUMENT_INDEX_ANNOTATION]);
  return Number.isSafeInteger(index) ? objectKey(kind, undefined, index) : undefined;
}

function conditionsOf(document: Record<string, unknown>): Condition[] {
  const status = isRecord(document.status) ? document.status : {};
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  return conditions.flatMap((condition: unknown) => {
    if (!isRecord(condition)) return [];
    const lastTransitionTime = timeOf(condition.lastTransitionTime);
    const { type, status: conditionStatus, reason } = condition;
    if (typeof type !== 'string' || typeof reason !== 'string' || !lastTransitionTime) return [];
    if (
      conditionStatus !== 'True' &&
      conditionStatus !== 'False' &&
      conditionStatus !== 'Unknown'
    ) {
      return [];
    }
    return [{ type, status: conditionStatus, reason, message: '', lastTransitionTime }];
  });
}

function timeOf(value: unknown): string | undefined {
  // A hand-edited sidecar may hold an unquoted timestamp, which js-yaml reads as a Date.
  if (value instanceof Date && !Number.isNaN(value.getTime())) return formatTime(value);
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) return undefined;
  return value;
}

function objectKey(kind: string, name: string | undefined, index: number): string {
  return name ? `${kind}/${name}` : `${kind}#${index}`;
}

function bpfProgramKey(ownerKey: string): string {
  return `${ownerKey}>${BPF_PROGRAM_KIND}`;
}

function sortedPrograms(programs: Record<string, Record<string, string>>) {
  return Object.fromEntries(sortedKeys(programs).map((id) => [id, sortedRecord(programs[id]!)]));
}

// Object.fromEntries defines own properties, so even a map named "__proto__" stays a plain key.
function sortedRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(sortedKeys(record).map((key) => [key, record[key]!]));
}

function sortedKeys(record: object): string[] {
  // Numeric order for program ids ("9" before "10"), plain order otherwise.
  return Object.keys(record).sort(KEY_ORDER.compare);
}

function dumpYaml(document: object): string {
  // No folding: a message stays on one line (or one block) so grep finds it.
  return yaml.dump(document, { noRefs: true, lineWidth: -1, sortKeys: false });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
