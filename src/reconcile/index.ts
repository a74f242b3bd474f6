export { buildDesired, type Blocker, type DesiredObject, type ImageResolver } from './desired.js';
export { Executor, type ExecutionReport, type Logger } from './executor.js';
export { ReconcileLoop } from './loop.js';
export { observe } from './observer.js';
export { chainHash, chainOrder, plan } from './planner.js';
export {
  imageStoreFor,
  preview,
  Reconciler,
  type PlanPreview,
  type ReconcileResult,
} from './reconciler.js';
export type { ObjectOutcome, ObjectState } from './report.js';
export { describeSelector, matchesNodeSelector } from './selector.js';
export type * from './types.js';
