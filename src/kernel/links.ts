/** Attaching programs: XDP and TCX links on interfaces, perf-event links on tracepoints. */
import fs from 'node:fs';
import path from 'node:path';

import { BpfdError } from '../errors.js';
import { check, isErrno } from './errno.js';
import { Fd } from './fd.js';
import {
  BPF_PERF_EVENT,
  BPF_TCX_EGRESS,
  BPF_TCX_INGRESS,
  BPF_XDP,
  ffi,
  LINK_CREATE_OPTS_SIZE,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_SKB_MODE,
} from './ffi.js';

export type XdpMode = 'native' | 'skb';
export type TcDirection = 'ingress' | 'egress';

/** Someone else's program already holds the hook. */
export class HookBusyError extends BpfdError {
  constructor(message: string) {
    super('BPFD_E_HOOK_BUSY', message);
  }
}

export class TracepointError extends BpfdError {
  constructor(message: string) {
    super('BPFD_E_TRACEPOINT', message);
  }
}

function linkCreateOptions(flags: number): Buffer {
  const options = Buffer.alloc(LINK_CREATE_OPTS_SIZE);
  options.writeBigUInt64LE(BigInt(LINK_CREATE_OPTS_SIZE), 0);
  options.writeUInt32LE(flags, 8);
  return options;
}

function createLink(program: Fd, ifindex: number, attachType: number, flags: number, hook: string) {
  const result = ffi().bpf_link_create(
    program.value,
    ifindex,
    attachType,
    linkCreateOptions(flags),
  );
  if (result === -16 /* EBUSY */ || result === -17 /* EEXIST */) {
    throw new HookBusyError(
      `${hook} already has a program that bpfd-gitops did not attach; it is left alone`,
    );
  }
  return new Fd(check(result, 'attach to', hook));
}

/**
 * Attaches an XDP program with a link. `native` falls back to generic (skb) mode when the
 * driver has no XDP support; the mode that worked is returned.
 * LIMITATION: the mode is chosen when the hook's link is created; later chains swap programs
 * through that link, so a changed xdpMode reaches a hook only when it is attached anew.
 */
export function attachXdp(program: Fd, ifindex: number, mode: XdpMode, hook: string) {
  if (mode === 'skb') {
    return { link: createLink(program, ifindex, BPF_XDP, XDP_FLAGS_SKB_MODE, hook), mode };
  }
  try {
    return { link: createLink(program, ifindex, BPF_XDP, XDP_FLAGS_DRV_MODE, hook), mode };
  } catch (err) {
    if (!isErrno(err, 'EOPNOTSUPP', 'ENOTSUP', 'EINVAL')) throw err;
    const link = createLink(program, ifindex, BPF_XDP, XDP_FLAGS_SKB_MODE, hook);
    return { link, mode: 'skb' as XdpMode };
  }
}

const XDP_QUERY_OPTS_SIZE = 32;
const XDP_QUERY_PROG_ID = 8;
const XDP_QUERY_ATTACH_MODE = 24;
const XDP_ATTACH_MODES: Record<number, XdpMode> = { 1: 'native', 2: 'skb' };

/** The XDP program on an interface and the mode it runs in, as netlink reports them. */
export function queryXdp(ifindex: number): { programId: number; mode?: XdpMode } {
  const options = Buffer.alloc(XDP_QUERY_OPTS_SIZE);
  options.writeBigUInt64LE(BigInt(XDP_QUERY_OPTS_SIZE), 0);
  check(ffi().bpf_xdp_query(ifindex, 0, options), 'query xdp of ifindex', String(ifindex));
  return {
    programId: options.readUInt32LE(XDP_QUERY_PROG_ID),
    mode: XDP_ATTACH_MODES[options.readUInt8(XDP_QUERY_ATTACH_MODE)],
  };
}

/**
 * Attaches a TC program through tcx (a bpf_link per interface and direction).
 * LIMITATION: tcx needs Linux 6.6 or newer; older kernels (Debian 12's stock 6.1) have only
 * netlink tc filters, which cannot be pinned as links, and TcPrograms fail there with the errno.
 */
export function attachTcx(program: Fd, ifindex: number, direction: TcDirection, hook: string) {
  const attachType = direction === 'ingress' ? BPF_TCX_INGRESS : BPF_TCX_EGRESS;
  return createLink(program, ifindex, attachType, 0, hook);
}

/** Swaps the program behind a link in one kernel operation. */
export function updateLink(link: Fd, program: Fd, hook: string): void {
  check(ffi().bpf_link_update(link.value, program.value, null), 'update link of', hook);
}

export function detachLink(link: Fd, hook: string): void {
  const result = ffi().bpf_link_detach(link.value);
  // A link whose interface is gone is already detached.
  if (result < 0 && -result !== 2 /* ENOENT */ && -result !== 67 /* ENOLINK */) {
    check(result, 'detach link of', hook);
  }
}

const PERF_TYPE_TRACEPOINT = 2;
const PERF_ATTR_SIZE = 128;
const PERF_FLAG_FD_CLOEXEC = 8;
const SYS_PERF_EVENT_OPEN = 298;
const TRACEFS_DIRS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

function tracepointId(tracepoint: string): number {
  for (const dir of TRACEFS_DIRS) {
    try {
      return Number(fs.readFileSync(path.join(dir, 'events', tracepoint, 'id'), 'utf8'));
    } catch {
      // try the next mount point
    }
  }
  throw new TracepointError(
    `tracepoint ${tracepoint} does not exist on this kernel ` +
      `(no events/${tracepoint}/id under ${TRACEFS_DIRS.join(' or ')})`,
  );
}

/** Mounts tracefs at /sys/kernel/tracing when no tracefs is reachable. */
export function ensureTracefs(): void {
  if (TRACEFS_DIRS.some((dir) => fs.existsSync(path.join(dir, 'events')))) return;
  check(
    ffi().mount('tracefs', TRACEFS_DIRS[0], 'tracefs', 0, null),
    'mount tracefs on',
    TRACEFS_DIRS[0],
  );
}

/** Attaches a tracepoint program through a perf event and a perf-event bpf_link. */
export function attachTracepoint(program: Fd, tracepoint: string): Fd {
  const id = tracepointId(tracepoint);
  const attributes = Buffer.alloc(PERF_ATTR_SIZE);
  attributes.writeUInt32LE(PERF_TYPE_TRACEPOINT, 0);
  attributes.writeUInt32LE(PERF_ATTR_SIZE, 4);
  attributes.writeBigUInt64LE(BigInt(id), 8);
  attributes.writeBigUInt64LE(1n, 16); // sample_period
  attributes.writeUInt32LE(1, 48); // wakeup_events

  // pid -1, cpu 0: a tracepoint's programs run for events on every CPU.
  const perfFd = Number(
    ffi().syscall(
      SYS_PERF_EVENT_OPEN,
      'uint8_t *',
      attributes,
      'int',
      -1,
      'int',
      0,
      'int',
      -1,
      'unsigned long',
      PERF_FLAG_FD_CLOEXEC,
    ),
  );
  const perfEvent = new Fd(check(perfFd, 'perf_event_open for tracepoint', tracepoint));
  try {
    const result = ffi().bpf_link_create(
      program.value,
      perfEvent.value,
      BPF_PERF_EVENT,
      linkCreateOptions(0),
    );
    if (result === -7 /* E2BIG */) {
      throw new TracepointError(
        `tracepoint ${tracepoint} already runs 64 BPF programs, the most the kernel attaches to one`,
      );
    }
    return new Fd(check(result, 'attach to tracepoint', tracepoint));
  } finally {
    perfEvent.close();
  }
}
