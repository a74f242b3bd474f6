/**
 * The `bpfd.io/v1alpha1` manifest API: schemas (which are also the types), parsing and
 * validation of manifest files, and the few decoders the reconciler needs.
 */
export {
  API_VERSION,
  BpfProgramSchema,
  LabelSelectorSchema,
  PROGRAM_KINDS,
  TcProgramSchema,
  TracepointProgramSchema,
  XdpProgramSchema,
  type BpfProgram,
  type LabelSelector,
  type ProgramKind,
  type ProgramObject,
  type TcProgram,
  type TracepointProgram,
  type XdpProgram,
} from './schemas.js';
export { type ParsedDocument } from './document.js';
export { parseManifestFile, parseManifestText, type ParsedFile } from './parse.js';
export { collectManifestFiles, isManifestFileName } from './files.js';
export { markDuplicates, validatePaths } from './manifest-set.js';
export { jsonSchemas } from './json-schema.js';
export { decodeGlobalData } from './base64.js';
export { proceedOnMask, TC_PROCEED_ON, XDP_PROCEED_ON } from './proceed-on.js';
export { validateAgainst, type ValidationTarget } from './validate.js';
// Schema building blocks, so other folders' schemas read and check like the manifests.
export { stringEnum, stringKeyedMap, strictObject } from './schema-kit.js';
