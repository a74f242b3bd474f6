export {
  ensureBpffsRoot,
  isBpffs,
  listDir,
  openPin,
  openPinIfExists,
  pinName,
  pinObject,
  removePins,
} from './bpffs.js';
export { BpffsError } from './bpffs.js';
export {
  chainProgramIds,
  ChainTooLongError,
  describeHook,
  hookDir,
  installChain,
  MAX_CHAIN_LENGTH,
  observeDispatchers,
  removeDispatcher,
  removeStaleRevisions,
  waitForInflightPackets,
  type ChainEntry,
  type Hook,
  type HookKind,
  type InstallResult,
  type ObservedDispatcher,
  type ObservedRevision,
} from './dispatcher.js';
export { errnoName, isErrno } from './errno.js';
export { Fd, withFds } from './fd.js';
export {
  BPF_PROG_TYPE_SCHED_CLS,
  BPF_PROG_TYPE_TRACEPOINT,
  BPF_PROG_TYPE_XDP,
  LibbpfMissingError,
} from './ffi.js';
export { kernelObjectIds, linkFdById, linkInfo, programFdById, programInfo } from './info.js';
export type { LinkInfo, ProgramInfo } from './info.js';
export { setLibbpfLogger } from './libbpf-log.js';
export {
  attachTracepoint,
  ensureTracefs,
  HookBusyError,
  queryXdp,
  TracepointError,
  type TcDirection,
  type XdpMode,
} from './links.js';
export { interfaceIndex, interfaceName, primaryInterface, watchLinks } from './netif.js';
export {
  BytecodeError,
  loadProgram,
  programPinPath,
  selectProgram,
  VerifierError,
  type LoadedProgram,
} from './object.js';
export { testRun, type TestRunResult } from './testrun.js';
export { acquireRootLock, RootLockedError } from './lock.js';
export { lookupPinnedMap } from './maps.js';
export { notifySystemd, watchdogIntervalMs } from './notify.js';
