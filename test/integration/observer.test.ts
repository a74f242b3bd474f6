/**
 * The observer reads the pin tree through each dir's times: a dir whose times did not move is
 * not listed again. These tests change the tree by hand, as an operator or a crash would, and
 * check that the very next observe sees it (no resync in between).
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';

import { BPF_PROG_TYPE_XDP, loadProgram } from '../../src/kernel/index.js';
import { observe } from '../../src/reconcile/index.js';
import { OBJECTS, Workspace } from '../helpers/env.js';

/** Longer than the observer's 100 ms: dir times this old are trusted. */
const SETTLE_MS = 150;

const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

describe('observe: the pin tree, read through dir times', () => {
  let workspace: Workspace;

  beforeEach(async () => {
    workspace = await Workspace.create();
  });

  afterEach(async () => {
    await workspace.cleanup();
  });

  const pinDir = (name: string, hash: string) =>
    path.join(workspace.bpffsRoot, 'programs', 'xdp', name, hash);

  const load = (name: string, hash: string) =>
    loadProgram({
      objectPath: path.join(OBJECTS, 'xdp_counter.o'),
      sectionName: 'stats',
      programType: BPF_PROG_TYPE_XDP,
      globalData: new Map(),
      pinDir: pinDir(name, hash),
      subject: `XdpProgram/${name}`,
    });

  const observed = (name: string) =>
    observe(workspace.bpffsRoot)
      .programs.filter((program) => program.key === `xdp/${name}`)
      .map(({ specHash, programId, maps }) => ({ specHash, programId, maps: Object.keys(maps) }));

  it('sees a program pin removed by hand, and the program pinned again', async () => {
    const first = load('watched', 'aaaa');
    await settle();
    expect(observed('watched')).to.deep.equal([
      { specHash: 'aaaa', programId: first.id, maps: ['xdp_stats_map'] },
    ]);
    expect(observed('watched')[0].programId, 'read again from the same times').to.equal(first.id);

    fs.rmSync(first.programPin);
    expect(observed('watched')).to.deep.equal([
      { specHash: 'aaaa', programId: undefined, maps: ['xdp_stats_map'] },
    ]);

    // The executor's way of loading a version again: its dir removed and created anew.
    await settle();
    fs.rmSync(pinDir('watched', 'aaaa'), { recursive: true });
    const again = load('watched', 'aaaa');
    expect(again.id).to.not.equal(first.id);
    expect(observed('watched')[0].programId).to.equal(again.id);
  });

  it('sees a version dir added or removed under a program, and a map pin removed', async () => {
    const first = load('versions', 'aaaa');
    await settle();
    expect(observed('versions').map((program) => program.specHash)).to.deep.equal(['aaaa']);

    const second = load('versions', 'bbbb');
    expect(observed('versions')).to.deep.equal([
      { specHash: 'aaaa', programId: first.id, maps: ['xdp_stats_map'] },
      { specHash: 'bbbb', programId: second.id, maps: ['xdp_stats_map'] },
    ]);

    await settle();
    fs.rmSync(pinDir('versions', 'aaaa'), { recursive: true });
    expect(observed('versions').map((program) => program.specHash)).to.deep.equal(['bbbb']);

    await settle();
    fs.rmSync(path.join(pinDir('versions', 'bbbb'), 'maps', 'xdp_stats_map'));
    fs.rmSync(second.programPin);
    expect(observed('versions')).to.deep.equal([
      { specHash: 'bbbb', programId: undefined, maps: [] },
    ]);
  });

  it('sees a whole program dir removed', async () => {
    load('gone', 'aaaa');
    load('kept', 'aaaa');
    await settle();
    expect(observed('gone')).to.have.length(1);

    fs.rmSync(path.join(workspace.bpffsRoot, 'programs', 'xdp', 'gone'), { recursive: true });
    expect(observed('gone')).to.deep.equal([]);
    expect(observed('kept')).to.have.length(1);
  });
});
