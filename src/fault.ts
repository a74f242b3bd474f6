/**
 * Test-only crash points. With BPFD_TEST_FAULT=<point> in the environment, the process kills
 * itself with SIGKILL when it reaches that point, so crash-safety tests can stop the daemon
 * between any two kernel actions. Without the variable this is a no-op.
 */
const FAULT = process.env.BPFD_TEST_FAULT;

export const FAULT_POINTS = [
  'after-map-pins',
  'after-load',
  'after-tracepoint-attach',
  'after-revision-build',
  'after-link-attach',
  'after-link-update',
  'after-dispatcher-detach',
  'before-unload',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

export function faultPoint(point: FaultPoint): void {
  if (FAULT === point) process.kill(process.pid, 'SIGKILL');
}
