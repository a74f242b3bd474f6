/**
 * XDP and TC dispatchers. Every hook the daemon owns (an interface for XDP, an interface and a
 * direction for TC) has one bpf_link to a dispatcher program; the dispatcher runs the chain
 * through its program array (see bpf/dispatcher.h).
 *
 * Pin layout under `<root>/dispatchers/<hookKind>/<ifindex>/`:
 *   link                      the bpf_link on the interface
 *   rev_<n>_<chainHash>/prog  a dispatcher revision
 *   rev_<n>_<chainHash>/maps/chain  its program array
 *
 * A change builds revision n+1 completely, swaps it in with one link update, waits until no
 * packet can still be inside the old revision, then removes the old one.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BpfdError } from '../errors.js';
import { faultPoint } from '../fault.js';
import { listDir, openPin, openPinIfExists, pinObject, removePins } from './bpffs.js';
import { check } from './errno.js';
import { Fd, withFds } from './fd.js';
import { BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_XDP, ffi } from './ffi.js';
import { linkInfo, LinkInfo, programInfo } from './info.js';
import { attachTcx, attachXdp, detachLink, updateLink, XdpMode } from './links.js';
import { loadProgram, programPinPath } from './object.js';

/** The kernel's tail-call budget per packet is 33; see bpf/dispatcher.h. */
export const MAX_CHAIN_LENGTH = 32;

export type HookKind = 'xdp' | 'tc-ingress' | 'tc-egress';

export interface Hook {
  kind: HookKind;
  ifindex: number;
  /** For messages only: the name may change, the index identifies the interface. */
  ifname: string;
}

export interface ChainEntry {
  programPin: string;
  proceedOn: number;
}

export interface ObservedRevision {
  number: number;
  chainHash: string;
  dir: string;
  programId: number | undefined;
}

export interface ObservedDispatcher {
  hook: Omit<Hook, 'ifname'>;
  dir: string;
  /** undefined when the link pin is missing; ifindex 0 when the interface is gone. */
  link: LinkInfo | undefined;
  revisions: ObservedRevision[];
  /** The revision the link runs, if any. */
  current: ObservedRevision | undefined;
}

export class ChainTooLongError extends BpfdError {
  constructor(hook: string, length: number) {
    super(
      'BPFD_E_CHAIN_FULL',
      `${hook}: ${length} programs wanted, a dispatcher runs at most ${MAX_CHAIN_LENGTH}`,
    );
  }
}

const HOOK_KINDS: HookKind[] = ['xdp', 'tc-ingress', 'tc-egress'];
const REVISION_PATTERN = /^rev_(\d+)_([0-9a-f]+)$/;
const SYS_MEMBARRIER = 324;
const MEMBARRIER_CMD_GLOBAL = 1;
const GRACE_FALLBACK_MS = 50;

const BPF_OBJECT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bpf');

export function dispatcherObjectPath(kind: HookKind): string {
  return path.join(BPF_OBJECT_DIR, kind === 'xdp' ? 'xdp_dispatcher.o' : 'tc_dispatcher.o');
}

export function hookDir(root: string, hook: Omit<Hook, 'ifname'>): string {
  return path.join(root, 'dispatchers', hook.kind, String(hook.ifindex));
}

export function describeHook(hook: Hook): string {
  return hook.kind === 'xdp'
    ? `xdp on ${hook.ifname}`
    : `tc ${hook.kind.slice(3)} on ${hook.ifname}`;
}

function readLink(dir: string): LinkInfo | undefined {
  const link = openPinIfExists(path.join(dir, 'link'));
  if (!link) return undefined;
  return withFds([link], () => linkInfo(link, dir));
}

function readRevision(dir: string, name: string): ObservedRevision | undefined {
  const match = REVISION_PATTERN.exec(name);
  if (!match) return undefined;
  const revisionDir = path.join(dir, name);
  const program = openPinIfExists(programPinPath(revisionDir));
  const programId = program ? withFds([program], () => programInfo(program).id) : undefined;
  return { number: Number(match[1]), chainHash: match[2], dir: revisionDir, programId };
}

/** Everything under `<root>/dispatchers`, as the kernel sees it now. */
export function observeDispatchers(root: string): ObservedDispatcher[] {
  const observed: ObservedDispatcher[] = [];
  for (const kind of HOOK_KINDS) {
    for (const entry of listDir(path.join(root, 'dispatchers', kind))) {
      const ifindex = Number(entry);
      if (!Number.isInteger(ifindex) || ifindex <= 0) continue;
      const hook = { kind, ifindex };
      const dir = hookDir(root, hook);
      const link = readLink(dir);
      const revisions = listDir(dir)
        .map((name) => readRevision(dir, name))
        .filter((revision): revision is ObservedRevision => revision !== undefined);
      const current = link && revisions.find((r) => r.programId === link.programId);
      observed.push({ hook, dir, link, revisions, current });
    }
  }
  return observed;
}

function encodeChainConfig(entries: ChainEntry[]): Map<string, Buffer> {
  const count = Buffer.alloc(4);
  count.writeUInt32LE(entries.length);
  const proceedOn = Buffer.alloc(4 * MAX_CHAIN_LENGTH);
  entries.forEach((entry, slot) => proceedOn.writeUInt32LE(entry.proceedOn >>> 0, 4 * slot));
  return new Map([
    ['program_count', count],
    ['proceed_on', proceedOn],
  ]);
}

function fillChain(chainPin: string, entries: ChainEntry[], hook: string): void {
  const chain = openPin(chainPin);
  withFds([chain], () => {
    entries.forEach((entry, slot) => {
      const program = openPin(entry.programPin);
      withFds([program], () => {
        const key = Buffer.alloc(4);
        key.writeUInt32LE(slot);
        const value = Buffer.alloc(4);
        value.writeInt32LE(program.value);
        check(
          ffi().bpf_map_update_elem(chain.value, key, value, 0n),
          `put ${entry.programPin} in the chain of`,
          hook,
        );
      });
    });
  });
}

/**
 * Waits until every packet that may have entered a replaced dispatcher has left it: emptying
 * the old program array earlier would let such a packet skip programs. membarrier's global
 * command waits for an RCU grace period, and dispatchers run inside RCU read-side sections.
 */
export async function waitForInflightPackets(): Promise<void> {
  const result = Number(ffi().syscall(SYS_MEMBARRIER, 'int', MEMBARRIER_CMD_GLOBAL, 'int', 0));
  if (result !== 0) await new Promise((resolve) => setTimeout(resolve, GRACE_FALLBACK_MS));
}

export interface InstallResult {
  revision: number;
  dispatcherId: number;
  /** The XDP mode in use (undefined for TC). */
  xdpMode?: XdpMode;
}

function nextRevisionNumber(dir: string): number {
  const numbers = listDir(dir)
    .map((name) => REVISION_PATTERN.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => Number(match[1]));
  return numbers.length === 0 ? 1 : Math.max(...numbers) + 1;
}

function buildRevision(root: string, hook: Hook, entries: ChainEntry[], chainHash: string) {
  const dir = hookDir(root, hook);
  const revisionDir = path.join(dir, `rev_${nextRevisionNumber(dir)}_${chainHash}`);
  const subject = `dispatcher for ${describeHook(hook)}`;
  try {
    const loaded = loadProgram({
      objectPath: dispatcherObjectPath(hook.kind),
      sectionName: hook.kind === 'xdp' ? 'xdp_dispatcher' : 'tc_dispatcher',
      programType: hook.kind === 'xdp' ? BPF_PROG_TYPE_XDP : BPF_PROG_TYPE_SCHED_CLS,
      globalData: encodeChainConfig(entries),
      pinDir: revisionDir,
      subject,
    });
    fillChain(loaded.maps.chain, entries, subject);
    return { revisionDir, loaded };
  } catch (err) {
    removePins(revisionDir);
    throw err;
  }
}

function attachNewLink(dir: string, hook: Hook, program: Fd, xdpMode: XdpMode) {
  const linkPin = path.join(dir, 'link');
  removePins(linkPin);
  const hookName = describeHook(hook);
  if (hook.kind === 'xdp') {
    const attached = attachXdp(program, hook.ifindex, xdpMode, hookName);
    withFds([attached.link], () => pinObject(attached.link, linkPin));
    return attached.mode;
  }
  const direction = hook.kind === 'tc-ingress' ? 'ingress' : 'egress';
  const link = attachTcx(program, hook.ifindex, direction, hookName);
  withFds([link], () => pinObject(link, linkPin));
  return undefined;
}

/** Installs `entries` as the hook's chain: a new revision, swapped in atomically. */
export async function installChain(
  root: string,
  hook: Hook,
  entries: ChainEntry[],
  chainHash: string,
  xdpMode: XdpMode,
): Promise<InstallResult> {
  const hookName = describeHook(hook);
  if (entries.length > MAX_CHAIN_LENGTH) throw new ChainTooLongError(hookName, entries.length);
  const dir = hookDir(root, hook);
  const { revisionDir, loaded } = buildRevision(root, hook, entries, chainHash);

  faultPoint('after-revision-build');
  const program = openPin(loaded.programPin);
  let mode: XdpMode | undefined = hook.kind === 'xdp' ? xdpMode : undefined;
  try {
    const link = openPinIfExists(path.join(dir, 'link'));
    const alive = link && linkInfo(link, hookName).ifindex === hook.ifindex;
    if (link && alive) {
      withFds([link], () => updateLink(link, program, hookName));
      faultPoint('after-link-update');
    } else {
      link?.close();
      mode = attachNewLink(dir, hook, program, xdpMode);
      faultPoint('after-link-attach');
    }
  } catch (err) {
    removePins(revisionDir);
    throw err;
  } finally {
    program.close();
  }

  await waitForInflightPackets();
  for (const name of listDir(dir)) {
    if (REVISION_PATTERN.test(name) && path.join(dir, name) !== revisionDir) {
      removePins(path.join(dir, name));
    }
  }
  return {
    revision: Number(REVISION_PATTERN.exec(path.basename(revisionDir))![1]),
    dispatcherId: loaded.id,
    xdpMode: mode,
  };
}

/** Detaches the hook's dispatcher and removes every pin of it. */
export async function removeDispatcher(root: string, hook: Omit<Hook, 'ifname'>): Promise<void> {
  const dir = hookDir(root, hook);
  const link = openPinIfExists(path.join(dir, 'link'));
  if (link) withFds([link], () => detachLink(link, dir));
  faultPoint('after-dispatcher-detach');
  await waitForInflightPackets();
  removePins(dir);
}

/** Removes revisions the link does not run (left by a crash between build and swap). */
export function removeStaleRevisions(dispatcher: ObservedDispatcher): string[] {
  const removed: string[] = [];
  for (const revision of dispatcher.revisions) {
    if (revision === dispatcher.current) continue;
    removePins(revision.dir);
    removed.push(revision.dir);
  }
  return removed;
}

/** Program ids in the chain of a revision, slot by slot (0 for an empty slot). */
export function chainProgramIds(revisionDir: string): number[] {
  const chain = openPinIfExists(path.join(revisionDir, 'maps', 'chain'));
  if (!chain) return [];
  return withFds([chain], () => {
    const ids: number[] = [];
    for (let slot = 0; slot < MAX_CHAIN_LENGTH; slot++) {
      const key = Buffer.alloc(4);
      key.writeUInt32LE(slot);
      const value = Buffer.alloc(4);
      const found = ffi().bpf_map_lookup_elem(chain.value, key, value) === 0;
      ids.push(found ? value.readUInt32LE(0) : 0);
    }
    while (ids.length > 0 && ids[ids.length - 1] === 0) ids.pop();
    return ids;
  });
}
