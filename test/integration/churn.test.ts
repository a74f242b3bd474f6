import { expect } from 'chai';

import {
  interfacesWithXdp,
  ChurnRun,
  KernelLedger,
  type ChurnReport,
  type KernelIds,
} from '../../bench/churn.js';
import {
  BenchNamespace,
  Cleanup,
  pinFiles,
  pollUntil,
  startDaemon,
  type BpfDescriptors,
  type RunningDaemon,
} from '../../bench/common.js';
import { OBJECTS, programIds, Workspace, xdpProgram } from '../helpers/env.js';

const CYCLES = 30;

describe('bpfd run under manifest churn (real kernel)', function () {
  this.timeout(600_000);
  const cleanup = new Cleanup();
  let namespace: BenchNamespace;
  let workspace: Workspace;
  let daemon: RunningDaemon;
  let ledger: KernelLedger;
  let descriptorsBefore: BpfDescriptors;
  let churn: ChurnReport;
  let stillLoaded: KernelIds;

  before(async () => {
    namespace = await BenchNamespace.create('ct', 1, cleanup);
    workspace = await Workspace.create();
    cleanup.defer('workspace', () => workspace.cleanup());
    daemon = await startDaemon(workspace, namespace, cleanup);
    ledger = new KernelLedger();
    descriptorsBefore = daemon.probe.bpfDescriptors();

    const setup = { workspace, interfaces: namespace.interfaces, probe: daemon.probe, ledger };
    churn = await new ChurnRun(setup).run(CYCLES);
    stillLoaded = await ledger.waitUntilFreed();
  });

  after(async function () {
    const failed = this.test?.parent?.tests.some((test) => test.state === 'failed');
    if (failed) process.stderr.write(`last daemon output:\n${daemon?.log.tail()}\n`);
    await cleanup.run();
  });

  it(`reports Loaded with new program ids after every apply and edit of ${CYCLES} cycles`, () => {
    expect(churn.loadedPhases).to.equal(2 * CYCLES);
  });

  it('frees every program, map and link it created', () => {
    expect(ledger.ours.programs.size).to.equal(10 * CYCLES);
    expect(ledger.ours.links.size).to.be.greaterThan(0);
    expect(ledger.ours.maps.size).to.be.greaterThan(0);
    expect(stillLoaded).to.deep.equal({ programs: [], maps: [], links: [] });
  });

  it('leaves only empty directories in its pin tree', () => {
    expect(pinFiles(workspace.bpffsRoot)).to.deep.equal([]);
  });

  it('leaves no XDP program attached to the interfaces', async () => {
    expect(await interfacesWithXdp(namespace)).to.deep.equal([]);
  });

  it('holds no more BPF file descriptors than before the churn', () => {
    expect(daemon.probe.bpfDescriptors()).to.deep.equal(descriptorsBefore);
  });

  it('is still running and loads a manifest applied after the churn', async () => {
    expect(daemon.probe.alive()).to.equal(true);
    workspace.writeManifest('after.yaml', [
      xdpProgram('after-churn', {
        sectionname: 'stats',
        interfaceselector: { interface: namespace.interfaces[0] },
        bytecode: { path: `${OBJECTS}/xdp_counter.o` },
      }),
    ]);
    await pollUntil(
      'after-churn Loaded',
      () => workspace.condition('after.yaml', 'after-churn')?.type === 'Loaded',
    );
    expect(programIds().has(workspace.programIdOf('after.yaml', 'after-churn')!)).to.equal(true);
  });
});
