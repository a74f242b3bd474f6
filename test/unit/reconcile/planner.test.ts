import crypto from 'node:crypto';

import { expect } from 'chai';

import { MAX_CHAIN_LENGTH, type Hook } from '../../../src/kernel/index.js';
import { chainHash, DISPATCHER_VERSION, plan } from '../../../src/reconcile/planner.js';
import type {
  DesiredProgram,
  ObservedDispatcherState,
  ObservedProgram,
  ObservedState,
} from '../../../src/reconcile/types.js';

const ROOT = '/sys/fs/bpf/plan-test';
const ETH0: Hook = { kind: 'xdp', ifindex: 2, ifname: 'eth0' };

function desired(
  name: string,
  options: {
    priority?: number;
    hash?: string;
    hook?: Hook;
    proceedOn?: number;
    tracepoint?: string;
  } = {},
): DesiredProgram {
  const kindShort = options.tracepoint ? 'tracepoint' : 'xdp';
  const hash = options.hash ?? 'h1';
  return {
    ref: {
      kind: options.tracepoint ? 'TracepointProgram' : 'XdpProgram',
      name,
      file: '/m/a.yaml',
      index: 0,
    },
    key: `${kindShort}/${name}`,
    kindShort,
    specHash: hash,
    pinDir: `${ROOT}/programs/${kindShort}/${name}/${hash}`,
    load: {
      objectPath: '/o.o',
      bytecodeDigest: 'sha256:x',
      sectionName: 's',
      programType: 6,
      globalData: new Map(),
    },
    tracepoint: options.tracepoint,
    attach: options.tracepoint
      ? undefined
      : {
          hook: options.hook ?? ETH0,
          priority: options.priority ?? 50,
          proceedOn: options.proceedOn ?? 0x80000004,
        },
  };
}

function observedProgram(
  program: DesiredProgram,
  programId: number,
  linkId?: number,
): ObservedProgram {
  return {
    key: program.key,
    specHash: program.specHash,
    pinDir: program.pinDir,
    programId,
    maps: {},
    linkId,
  };
}

function dispatcher(
  programs: DesiredProgram[],
  chainIds: number[],
  hook: Hook = ETH0,
): ObservedDispatcherState {
  const members = programs.map((p) => ({
    key: p.key,
    specHash: p.specHash,
    pinDir: p.pinDir,
    proceedOn: p.attach!.proceedOn,
  }));
  const current = {
    number: 1,
    chainHash: chainHash(members),
    dir: `${ROOT}/dispatchers/xdp/2/rev_1_x`,
    programId: 900,
  };
  return {
    hook: { kind: hook.kind, ifindex: hook.ifindex },
    dir: `${ROOT}/dispatchers/${hook.kind}/${hook.ifindex}`,
    link: { id: 7, type: 6, programId: 900, ifindex: hook.ifindex, attachType: 0 },
    revisions: [current],
    current,
    chainIds,
  };
}

function types(state: ObservedState, programs: DesiredProgram[]): string[] {
  return plan(programs, state).actions.map((a) => a.type);
}

describe('planner', () => {
  it('loads a new program and installs its chain', () => {
    const a = desired('a');
    expect(types({ programs: [], dispatchers: [] }, [a])).to.deep.equal(['load', 'installChain']);
  });

  it('plans nothing when the kernel already matches', () => {
    const a = desired('a');
    const b = desired('b', { priority: 60 });
    const state = {
      programs: [observedProgram(a, 11), observedProgram(b, 12)],
      dispatchers: [dispatcher([a, b], [11, 12])],
    };
    expect(plan([a, b], state).actions).to.deep.equal([]);
  });

  it('orders a chain by priority, then by name', () => {
    const c = desired('c', { priority: 10 });
    const b = desired('b', { priority: 20 });
    const a = desired('a', { priority: 20 });
    const actions = plan([b, c, a], { programs: [], dispatchers: [] }).actions;
    const install = actions.find((x) => x.type === 'installChain');
    expect(
      install && install.type === 'installChain' && install.members.map((m) => m.key),
    ).to.deep.equal(['xdp/c', 'xdp/a', 'xdp/b']);
  });

  it('swaps the chain when the order changes, without reloading programs', () => {
    const a = desired('a', { priority: 10 });
    const b = desired('b', { priority: 20 });
    const state = {
      programs: [observedProgram(a, 11), observedProgram(b, 12)],
      dispatchers: [dispatcher([a, b], [11, 12])],
    };
    const swapped = [desired('a', { priority: 30 }), b];
    expect(types(state, swapped)).to.deep.equal(['installChain']);
  });

  it('swaps the chain when proceedon changes', () => {
    const a = desired('a');
    const state = { programs: [observedProgram(a, 11)], dispatchers: [dispatcher([a], [11])] };
    expect(types(state, [desired('a', { proceedOn: 0x2 })])).to.deep.equal(['installChain']);
  });

  it('loads the new version before the swap and unloads the old one after it', () => {
    const old = desired('a', { hash: 'old' });
    const state = { programs: [observedProgram(old, 11)], dispatchers: [dispatcher([old], [11])] };
    expect(types(state, [desired('a', { hash: 'new' })])).to.deep.equal([
      'load',
      'installChain',
      'unload',
    ]);
  });

  it('reloads a program whose pin vanished and rebuilds its chain', () => {
    const a = desired('a');
    const state = {
      programs: [{ ...observedProgram(a, 11), programId: undefined }],
      dispatchers: [dispatcher([a], [11])],
    };
    expect(types(state, [a])).to.deep.equal(['load', 'installChain']);
  });

  it('rebuilds a chain whose program array does not hold the pinned programs', () => {
    const a = desired('a');
    const state = { programs: [observedProgram(a, 11)], dispatchers: [dispatcher([a], [99])] };
    expect(types(state, [a])).to.deep.equal(['installChain']);
  });

  it('re-attaches when the link pin is gone', () => {
    const a = desired('a');
    const state = {
      programs: [observedProgram(a, 11)],
      dispatchers: [{ ...dispatcher([a], [11]), link: undefined, current: undefined }],
    };
    expect(types(state, [a])).to.deep.equal(['installChain']);
  });

  it('removes the dispatcher and unloads when the last program goes', () => {
    const a = desired('a');
    const state = { programs: [observedProgram(a, 11)], dispatchers: [dispatcher([a], [11])] };
    expect(types(state, [])).to.deep.equal(['removeDispatcher', 'unload']);
  });

  it('moves a program to its new interface and removes the old hook', () => {
    const a = desired('a');
    const state = { programs: [observedProgram(a, 11)], dispatchers: [dispatcher([a], [11])] };
    const moved = desired('a', { hook: { kind: 'xdp', ifindex: 3, ifname: 'eth1' } });
    expect(types(state, [moved])).to.deep.equal(['installChain', 'removeDispatcher']);
  });

  it('removes revisions the link does not run', () => {
    const a = desired('a');
    const current = dispatcher([a], [11]);
    const stale = {
      number: 0,
      chainHash: 'dead',
      dir: `${ROOT}/dispatchers/xdp/2/rev_0_dead`,
      programId: 5,
    };
    const state = {
      programs: [observedProgram(a, 11)],
      dispatchers: [{ ...current, revisions: [stale, current.current!] }],
    };
    expect(types(state, [a])).to.deep.equal(['removeStaleRevisions']);
  });

  it('attaches tracepoints and re-attaches one whose link is gone', () => {
    const t = desired('t', { tracepoint: 'syscalls/sys_enter_openat' });
    expect(types({ programs: [], dispatchers: [] }, [t])).to.deep.equal([
      'load',
      'attachTracepoint',
    ]);
    expect(types({ programs: [observedProgram(t, 5, 9)], dispatchers: [] }, [t])).to.deep.equal([]);
    expect(types({ programs: [observedProgram(t, 5)], dispatchers: [] }, [t])).to.deep.equal([
      'attachTracepoint',
    ]);
  });

  it(`admits ${MAX_CHAIN_LENGTH} programs per hook and rejects the newcomer beyond that`, () => {
    const running = Array.from({ length: MAX_CHAIN_LENGTH }, (_, i) =>
      desired(`p${String(i).padStart(2, '0')}`, { priority: 100 + i }),
    );
    const state = {
      programs: running.map((p, i) => observedProgram(p, 100 + i)),
      dispatchers: [
        dispatcher(
          running,
          running.map((_, i) => 100 + i),
        ),
      ],
    };
    const newcomer = desired('first', { priority: 1 });
    const result = plan([...running, newcomer], state);
    expect([...result.rejected.keys()]).to.deep.equal(['xdp/first']);
    expect(result.rejected.get('xdp/first')).to.include(`${MAX_CHAIN_LENGTH}`);
    expect(result.actions).to.deep.equal([]);
  });

  it('moves running hooks to new dispatcher code after an upgrade, reloading no program', () => {
    const a = desired('a');
    const b = desired('b', { priority: 60 });
    const previous = dispatcher([a, b], [11, 12]);
    const parts = [a, b].map((p) => [p.key, p.specHash, p.attach!.proceedOn]);
    const olderHash = crypto
      .createHash('sha256')
      .update(JSON.stringify([DISPATCHER_VERSION - 1, parts]))
      .digest('hex')
      .slice(0, 16);
    const upgraded = { ...previous, current: { ...previous.current!, chainHash: olderHash } };
    const state = {
      programs: [observedProgram(a, 11), observedProgram(b, 12)],
      dispatchers: [upgraded],
    };
    expect(types(state, [a, b])).to.deep.equal(['installChain']);
  });

  it('keeps hooks independent: a change on one interface leaves the other alone', () => {
    const a = desired('a');
    const b = desired('b', { hook: { kind: 'xdp', ifindex: 3, ifname: 'eth1' } });
    const state = {
      programs: [observedProgram(a, 11), observedProgram(b, 12)],
      dispatchers: [dispatcher([a], [11]), dispatcher([b], [12], b.attach!.hook)],
    };
    const changed = desired('b', { hook: b.attach!.hook, proceedOn: 1 });
    const actions = plan([a, changed], state).actions;
    expect(actions.map((x) => x.type)).to.deep.equal(['installChain']);
    expect(actions[0].type === 'installChain' && actions[0].hook.ifindex).to.equal(3);
  });
});
