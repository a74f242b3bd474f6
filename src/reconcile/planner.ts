/**
 * The planner: desired programs and observed kernel state in, ordered actions out. Pure, so it
 * is tested without a kernel. Order of the plan: load what is new, attach tracepoints, swap
 * every changed hook to a complete new chain, remove hooks nobody wants, then unload what no
 * manifest wants any more (only after the swaps, so no hook ever points at a missing program).
 */
import crypto from 'node:crypto';

import { MAX_CHAIN_LENGTH, type Hook } from '../kernel/index.js';
import type {
  Action,
  DesiredProgram,
  ObservedDispatcherState,
  ObservedProgram,
  ObservedState,
  Plan,
} from './types.js';
import type { ChainMember } from './types.js';

/** Bump when the dispatcher objects change, so running hooks move to the new code. */
export const DISPATCHER_VERSION = 2;

interface HookChain {
  hook: Hook;
  members: DesiredProgram[];
}

function hookId(hook: Omit<Hook, 'ifname'>): string {
  return `${hook.kind}/${hook.ifindex}`;
}

/** Lower priority first; ties broken by name, so every node orders a chain the same way. */
export function chainOrder(a: DesiredProgram, b: DesiredProgram): number {
  const priority = a.attach!.priority - b.attach!.priority;
  if (priority !== 0) return priority;
  return a.ref.name < b.ref.name ? -1 : a.ref.name > b.ref.name ? 1 : 0;
}

/** Identifies a chain's content: which programs (and versions), in which order, how they go on. */
export function chainHash(members: ChainMember[]): string {
  const parts = members.map((m) => [m.key, m.specHash, m.proceedOn]);
  return crypto
    .createHash('sha256')
    .update(JSON.stringify([DISPATCHER_VERSION, parts]))
    .digest('hex')
    .slice(0, 16);
}

function toMember(program: DesiredProgram): ChainMember {
  return {
    key: program.key,
    specHash: program.specHash,
    pinDir: program.pinDir,
    proceedOn: program.attach!.proceedOn,
  };
}

function groupByHook(programs: DesiredProgram[]): Map<string, HookChain> {
  const chains = new Map<string, HookChain>();
  for (const program of programs) {
    if (!program.attach) continue;
    const id = hookId(program.attach.hook);
    const chain = chains.get(id) ?? { hook: program.attach.hook, members: [] };
    chain.members.push(program);
    chains.set(id, chain);
  }
  return chains;
}

/**
 * At most MAX_CHAIN_LENGTH programs per hook. Programs already running keep their place, so
 * adding one too many rejects the newcomer rather than evicting a running program.
 */
function admit(
  chain: HookChain,
  running: Set<string>,
  rejected: Map<string, string>,
): DesiredProgram[] {
  const ordered = [...chain.members].sort(chainOrder);
  if (ordered.length <= MAX_CHAIN_LENGTH) return ordered;

  const incumbents = ordered.filter((m) => running.has(m.key)).slice(0, MAX_CHAIN_LENGTH);
  const newcomers = ordered.filter((m) => !incumbents.includes(m));
  const admitted = [...incumbents, ...newcomers.slice(0, MAX_CHAIN_LENGTH - incumbents.length)];
  for (const program of ordered) {
    if (admitted.includes(program)) continue;
    rejected.set(
      program.key,
      `${chain.hook.kind} on ${chain.hook.ifname} already runs ${MAX_CHAIN_LENGTH} programs, ` +
        `the most one dispatcher can chain; ${ordered.length} want it`,
    );
  }
  return admitted.sort(chainOrder);
}

function chainIsCurrent(
  dispatcher: ObservedDispatcherState | undefined,
  members: DesiredProgram[],
  hash: string,
  observedByDir: Map<string, ObservedProgram>,
  loading: Set<string>,
): boolean {
  if (!dispatcher?.current || !dispatcher.link) return false;
  if (dispatcher.link.ifindex !== dispatcher.hook.ifindex) return false;
  if (dispatcher.current.chainHash !== hash) return false;
  if (members.some((m) => loading.has(m.pinDir))) return false;

  // The chain must hold exactly the programs pinned now (a pin replaced by hand is drift).
  const expected = members.map((m) => observedByDir.get(m.pinDir)?.programId ?? -1);
  return (
    expected.length === dispatcher.chainIds.length &&
    expected.every((id, slot) => id === dispatcher.chainIds[slot])
  );
}

function runningKeys(observed: ObservedState): Set<string> {
  const byId = new Map(observed.programs.map((p) => [p.programId, p.key]));
  const keys = new Set<string>();
  for (const dispatcher of observed.dispatchers) {
    for (const id of dispatcher.chainIds) {
      const key = byId.get(id);
      if (key) keys.add(key);
    }
  }
  return keys;
}

export function plan(desired: DesiredProgram[], observed: ObservedState): Plan {
  const actions: Action[] = [];
  const rejected = new Map<string, string>();
  const observedByDir = new Map(observed.programs.map((p) => [p.pinDir, p]));
  const running = runningKeys(observed);

  const chains = groupByHook(desired);
  const admittedChains = new Map<string, { hook: Hook; members: DesiredProgram[] }>();
  for (const [id, chain] of chains) {
    admittedChains.set(id, { hook: chain.hook, members: admit(chain, running, rejected) });
  }
  const wanted = desired.filter((p) => !rejected.has(p.key));

  // 1. load: missing, or its program pin vanished (drift)
  const loading = new Set<string>();
  for (const program of wanted) {
    const current = observedByDir.get(program.pinDir);
    if (current?.programId !== undefined) continue;
    actions.push({ type: 'load', program });
    loading.add(program.pinDir);
  }

  // 2. tracepoints without a live link
  for (const program of wanted) {
    if (!program.tracepoint) continue;
    const current = observedByDir.get(program.pinDir);
    if (!loading.has(program.pinDir) && current?.linkId !== undefined) continue;
    actions.push({ type: 'attachTracepoint', program });
  }

  // 3. hooks whose chain differs from the one running
  const dispatchers = new Map(observed.dispatchers.map((d) => [hookId(d.hook), d]));
  for (const [id, chain] of admittedChains) {
    const members = chain.members.map(toMember);
    const hash = chainHash(members);
    if (chainIsCurrent(dispatchers.get(id), chain.members, hash, observedByDir, loading)) continue;
    actions.push({
      type: 'installChain',
      hook: chain.hook,
      members,
    });
  }

  // 4. hooks nobody wants any more; leftovers of interrupted swaps
  for (const [id, dispatcher] of dispatchers) {
    if (!admittedChains.has(id)) {
      actions.push({ type: 'removeDispatcher', dispatcher });
      continue;
    }
    const stale = dispatcher.revisions.some((r) => r !== dispatcher.current);
    const installing = actions.some((a) => a.type === 'installChain' && hookId(a.hook) === id);
    if (stale && !installing) actions.push({ type: 'removeStaleRevisions', dispatcher });
  }

  // 5. programs no manifest wants (or an older spec of one that changed)
  const wantedDirs = new Set(wanted.map((p) => p.pinDir));
  for (const program of observed.programs) {
    if (!wantedDirs.has(program.pinDir)) actions.push({ type: 'unload', program });
  }

  return { actions, rejected };
}
