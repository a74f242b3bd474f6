/** The shapes the desired-state builder, the observer, the planner and the executor share. */
import type { Hook, ObservedDispatcher } from '../kernel/index.js';

export type KindShort = 'xdp' | 'tc' | 'tracepoint';

/** Where an object comes from, for status and messages. */
export interface ObjectRef {
  kind: 'XdpProgram' | 'TcProgram' | 'TracepointProgram';
  name: string;
  file: string;
  index: number;
  generation?: number;
  /** Set when the object is a last-known-good copy: why the current text is not used. */
  retainedBecause?: string;
}

export interface LoadSpec {
  objectPath: string;
  bytecodeDigest: string;
  /** Set for `bytecode.image`: what was pulled. */
  image?: { reference: string; manifestDigest: string };
  sectionName: string;
  programType: number;
  globalData: Map<string, Buffer>;
}

/** One program this node should run, with everything resolved against the node. */
export interface DesiredProgram {
  ref: ObjectRef;
  /** `<kindShort>/<name>`: unique among programs. */
  key: string;
  kindShort: KindShort;
  /** Identity of the loaded program: same hash, same kernel program. */
  specHash: string;
  pinDir: string;
  load: LoadSpec;
  tracepoint?: string;
  attach?: { hook: Hook; priority: number; proceedOn: number };
}

export interface ObservedProgram {
  key: string;
  specHash: string;
  pinDir: string;
  /** undefined when the program pin is gone (drift) */
  programId: number | undefined;
  maps: Record<string, string>;
  /** Tracepoint programs: id of the pinned link, undefined when missing. */
  linkId?: number;
}

export interface ObservedDispatcherState extends ObservedDispatcher {
  /** Program ids in the current revision's chain, slot order. */
  chainIds: number[];
  /** XDP hooks: the mode the kernel runs the dispatcher in. */
  xdpMode?: 'native' | 'skb';
}

export interface ObservedState {
  programs: ObservedProgram[];
  dispatchers: ObservedDispatcherState[];
}

/** One program's place in a hook's chain. */
export interface ChainMember {
  key: string;
  specHash: string;
  pinDir: string;
  proceedOn: number;
}

export type Action =
  | { type: 'load'; program: DesiredProgram }
  | { type: 'attachTracepoint'; program: DesiredProgram }
  | { type: 'installChain'; hook: Hook; members: ChainMember[] }
  | { type: 'removeDispatcher'; dispatcher: ObservedDispatcherState }
  | { type: 'removeStaleRevisions'; dispatcher: ObservedDispatcherState }
  | { type: 'unload'; program: ObservedProgram };

export interface Plan {
  actions: Action[];
  /** Programs that cannot join their hook because the chain is full: key → message. */
  rejected: Map<string, string>;
}
