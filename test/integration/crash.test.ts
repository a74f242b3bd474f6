import fs from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';

import { FAULT_POINTS, type FaultPoint } from '../../src/fault.js';
import { kernelObjectIds } from '../../src/kernel/index.js';
import { observe } from '../../src/reconcile/index.js';
import {
  objectsLeftSince,
  OBJECTS,
  tracepointProgram,
  VethPair,
  Workspace,
  xdpCounter,
} from '../helpers/env.js';

type Scenario = 'apply' | 'reorder' | 'delete';

/** Which change passes through each crash point. */
const SCENARIO: Record<FaultPoint, Scenario> = {
  'after-map-pins': 'apply',
  'after-load': 'apply',
  'after-tracepoint-attach': 'apply',
  'after-revision-build': 'apply',
  'after-link-attach': 'apply',
  'after-link-update': 'reorder',
  'after-dispatcher-detach': 'delete',
  'before-unload': 'delete',
};

function manifests(iface: string, firstPriority: number) {
  const counter = (name: string, priority: number) => xdpCounter(name, iface, { priority });
  return [
    counter('first', firstPriority),
    counter('second', 20),
    tracepointProgram('opens', {
      sectionname: 'tracepoint_openat',
      name: 'syscalls/sys_enter_openat',
      bytecode: { path: path.join(OBJECTS, 'tracepoint_counter.o') },
    }),
  ];
}

describe('crash safety (kill -9 between kernel actions)', function () {
  this.timeout(120_000);
  let veth: VethPair;
  let workspace: Workspace;

  beforeEach(async () => {
    veth = await new VethPair().create();
    workspace = await Workspace.create();
  });

  afterEach(async () => {
    await workspace.cleanup();
    await veth.cleanup();
  });

  const once = (env: Record<string, string> = {}) => workspace.runOnce(veth.nsA, env);

  for (const point of FAULT_POINTS) {
    it(`converges with no duplicates and no leaks after a crash at ${point}`, async () => {
      const baseline = kernelObjectIds();
      const scenario = SCENARIO[point];
      workspace.writeManifest('all.yaml', manifests(veth.ifA, 10));
      if (scenario !== 'apply') expect((await once()).code).to.equal(0);
      if (scenario === 'reorder') workspace.writeManifest('all.yaml', manifests(veth.ifA, 30));
      if (scenario === 'delete') workspace.removeManifest('all.yaml');

      const crashed = await once({ BPFD_TEST_FAULT: point });
      expect(
        crashed.signal,
        `${point} was not reached:\n${crashed.stdout}${crashed.stderr}`,
      ).to.equal('SIGKILL');

      const recovered = await once();
      expect(recovered.code, recovered.stdout + recovered.stderr).to.equal(0);
      const observed = observe(workspace.bpffsRoot);
      if (scenario !== 'delete') {
        const names = ['first', 'second', 'opens'];
        for (const name of names)
          expect(workspace.condition('all.yaml', name)?.type, name).to.equal('Loaded');
        for (const program of observed.programs) {
          expect(Object.keys(program.maps), `${program.key} map pins`).to.have.length(1);
        }
        // one version per object, one revision per hook, every chain entry a pinned program
        expect(observed.programs.map((p) => p.key).sort()).to.deep.equal([
          'tracepoint/opens',
          'xdp/first',
          'xdp/second',
        ]);
        expect(observed.dispatchers).to.have.length(1);
        expect(observed.dispatchers[0].revisions).to.have.length(1);
        const expectedOrder = scenario === 'reorder' ? ['second', 'first'] : ['first', 'second'];
        expect(observed.dispatchers[0].chainIds).to.deep.equal(
          expectedOrder.map((name) => workspace.programIdOf('all.yaml', name)),
        );
        workspace.removeManifest('all.yaml');
        expect((await once()).code).to.equal(0);
      }

      expect(workspace.pins()).to.deep.equal([]);
      expect(await objectsLeftSince(baseline)).to.deep.equal({ programs: [], maps: [], links: [] });
      expect(fs.existsSync(path.join(workspace.manifests, 'all.status.yaml'))).to.equal(false);
    });
  }
});
