export {
  CONDITION,
  newCondition,
  type Condition,
  type ConditionInput,
  type ConditionKind,
  type ConditionStatus,
} from './conditions.js';
export {
  bpfProgramName,
  DOCUMENT_INDEX_ANNOTATION,
  HOSTNAME_LABEL,
  OWNER_LABEL,
  type BpfProgramStatus,
  type ObjectStatus,
} from './documents.js';
export { isSidecarFileName, sidecarPath } from './paths.js';
export { readSidecar, removeSidecar, StatusWriter, type StatusWriterOptions } from './writer.js';
