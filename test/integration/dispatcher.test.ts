/**
 * Multi-program dispatchers on a real kernel: chain order, proceedon, the 32-program limit,
 * atomic reorders under traffic, restarts, foreign programs, removal, and TC directions.
 *
 * Every test gets its own veth pair (with ARP and IPv6 silenced, so the hooks see only the
 * test's packets and counters compare exactly), bpffs root and manifest dir. The `hits` map of
 * the test objects counts each run of a program.
 *
 * Environment: BPFD_REORDERS (default 1000) is the number of XDP chain swaps made through the
 * kernel API under traffic (a fifth of it on TC); BPFD_DAEMON_REORDERS (default 20) the number
 * made through manifest edits to a running daemon.
 */
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';

import { expect } from 'chai';

import {
  chainProgramIds,
  kernelObjectIds,
  observeDispatchers,
  type HookKind,
} from '../../src/kernel/index.js';
import {
  bpfd,
  Daemon,
  eventually,
  OBJECTS,
  positiveIntegerFromEnv,
  programIds,
  readU64,
  sh,
  tcProgram,
  u32,
  VethPair,
  Workspace,
  xdpProgram,
} from '../helpers/env.js';
import {
  quietVeth,
  reorderChains,
  UdpStream,
  xdpAttachments,
  type StreamCount,
} from '../helpers/traffic.js';

const XDP_DROP = 1;
const XDP_PASS = 2;
const XDP_DISPATCHER_RETURN = 31;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_PIPE = 3;
const TC_DISPATCHER_RETURN = 30;
/** bpfd's default XDP proceedon, [pass, dispatcher_return], as the dispatcher's bit mask. */
const XDP_DEFAULT_PROCEED_ON = 2 ** XDP_PASS + 2 ** XDP_DISPATCHER_RETURN;
/** [pipe, dispatcher_return] for TC, where code c is bit c + 1. */
const TC_DEFAULT_PROCEED_ON = 2 ** (TC_ACT_PIPE + 1) + 2 ** (TC_DISPATCHER_RETURN + 1);

const KERNEL_API_REORDERS = positiveIntegerFromEnv('BPFD_REORDERS', 1000);
const DAEMON_REORDERS = positiveIntegerFromEnv('BPFD_DAEMON_REORDERS', 20);
const TC_REORDERS = Math.ceil(KERNEL_API_REORDERS / 5);
const COUNTER_SETTLE_MS = 5_000;

/** A hook as the kernel runs it, with the `hits` pins of its programs in the order asked for. */
interface HookView {
  dispatcherId: number;
  linkId: number;
  ids: number[];
  hits: string[];
}

describe('Multi-program dispatchers (daemon, real kernel)', function () {
  this.timeout(180_000);
  let veth: VethPair;
  let workspace: Workspace;
  let daemon: Daemon | undefined;
  let stream: UdpStream | undefined;

  beforeEach(async () => {
    veth = await new VethPair().create();
    await quietVeth(veth);
    workspace = await Workspace.create();
  });

  afterEach(async function () {
    stream?.kill();
    stream = undefined;
    await daemon?.stopAndReport(this.currentTest?.state === 'failed');
    daemon = undefined;
    await workspace.cleanup();
    await veth.cleanup();
  });

  const start = () => (daemon = new Daemon(workspace, veth.nsA));
  const runOnce = () => bpfd(['run', '--once', ...workspace.flags()], veth.nsA);

  function xdpVerdict(name: string, priority: number, verdict = XDP_PASS, proceedon?: string[]) {
    return xdpProgram(name, {
      sectionname: 'xdp',
      priority,
      interfaceselector: { interface: veth.ifA },
      globaldata: { verdict: u32(verdict) },
      bytecode: { path: path.join(OBJECTS, 'test/xdp_verdict.o') },
      ...(proceedon ? { proceedon } : {}),
    });
  }

  function tcVerdict(name: string, direction: string, verdict: number, priority = 50) {
    return tcProgram(name, {
      sectionname: 'classifier',
      direction,
      priority,
      interfaceselector: { interface: veth.ifA },
      globaldata: { verdict: u32(verdict) },
      bytecode: { path: path.join(OBJECTS, 'test/tc_verdict.o') },
    });
  }

  function kernelHook(kind: HookKind): Omit<HookView, 'hits'> | undefined {
    const dispatcher = observeDispatchers(workspace.bpffsRoot).find((d) => d.hook.kind === kind);
    if (!dispatcher?.link || dispatcher.current?.programId === undefined) return undefined;
    return {
      dispatcherId: dispatcher.current.programId,
      linkId: dispatcher.link.id,
      ids: chainProgramIds(dispatcher.current.dir),
    };
  }

  /**
   * Waits until the kernel runs exactly `names` (in that order) on the hook, every one of them
   * Loaded in its sidecar naming that dispatcher; with `previous`, a new dispatcher revision.
   */
  function chainSettles(
    file: string,
    names: string[],
    kind: HookKind,
    previous?: HookView,
  ): Promise<HookView> {
    return eventually(
      `${names.join(' → ')} on ${kind}`,
      () => {
        const hook = kernelHook(kind);
        if (!hook) throw new Error(`no dispatcher runs on ${kind}`);
        if (hook.dispatcherId === previous?.dispatcherId) {
          throw new Error(`dispatcher ${hook.dispatcherId} not replaced yet`);
        }
        const ids = names.map((name) => {
          const condition = workspace.condition(file, name);
          if (condition?.type !== 'Loaded') {
            throw new Error(`${name} is ${condition?.type}: ${condition?.message}`);
          }
          const annotations = workspace.bpfProgram(file, name)!.metadata.annotations;
          if (annotations['bpfd.io/dispatcher-id'] !== String(hook.dispatcherId)) {
            throw new Error(`status of ${name} does not name dispatcher ${hook.dispatcherId} yet`);
          }
          return workspace.programIdOf(file, name);
        });
        if (!isDeepStrictEqual(ids, hook.ids)) {
          throw new Error(`kernel chain [${hook.ids}], status [${ids}]`);
        }
        return { ...hook, hits: names.map((name) => workspace.mapPinOf(file, name, 'hits')) };
      },
      60_000,
    );
  }

  const readHits = (pins: string[]) => pins.map((pin) => readU64(pin));

  /** Waits until each counter grew by exactly its expected amount since `before`. */
  async function hitsGrowBy(pins: string[], before: bigint[], expected: number[]): Promise<void> {
    await eventually(
      `hits to grow by [${expected}]`,
      () => {
        const grown = readHits(pins).map((value, slot) => Number(value - before[slot]));
        if (!isDeepStrictEqual(grown, expected)) throw new Error(`they grew by [${grown}]`);
        return true;
      },
      COUNTER_SETTLE_MS,
    );
  }

  function chainPosition(file: string, name: string): string {
    return workspace.bpfProgram(file, name)!.metadata.annotations['bpfd.io/chain-position'];
  }

  /**
   * Installs a chain of `left` then `right` with `bpfd run --once`, then flips their order
   * `count` times through the kernel API while a UDP stream crosses the hook. Each program must
   * count every datagram exactly once; afterwards the daemon restores the manifests' chain.
   */
  async function swapUnderTraffic(
    kind: HookKind,
    programs: object[],
    proceedOn: number,
    count: number,
  ): Promise<void> {
    workspace.writeManifest('chain.yaml', programs);
    const setup = await runOnce();
    expect(setup.code, setup.stdout + setup.stderr).to.equal(0);
    const hook = await chainSettles('chain.yaml', ['left', 'right'], kind);
    const [leftId, rightId] = hook.ids;
    const pinDir = (name: string) =>
      workspace.bpfProgram('chain.yaml', name)!.metadata.annotations['bpfd.io/pin-dir'];
    const [leftPin, rightPin] = ['left', 'right'].map((name) => path.join(pinDir(name), 'prog'));
    const dispatcherOfHook = () =>
      observeDispatchers(workspace.bpffsRoot).find((d) => d.hook.kind === kind);
    const { ifindex } = dispatcherOfHook()!.hook;
    const before = readHits(hook.hits);

    stream = await UdpStream.start(veth);
    const lastDispatcherId = await reorderChains(veth.nsA, {
      bpffsRoot: workspace.bpffsRoot,
      hook: { kind, ifindex, ifname: veth.ifA },
      chains: [
        [rightPin, leftPin],
        [leftPin, rightPin],
      ],
      proceedOn,
      xdpMode: 'native',
      count,
    });
    const streamed = await stream.stop();
    stream = undefined;

    expect(streamed.sent).to.be.greaterThan(0);
    const grown = readHits(hook.hits).map((value, slot) => value - before[slot]);
    expect(grown).to.deep.equal([BigInt(streamed.sent), BigInt(streamed.sent)]);
    const lastOrder = count % 2 === 1 ? [rightId, leftId] : [leftId, rightId];
    expect(kernelHook(kind)).to.deep.equal({
      dispatcherId: lastDispatcherId,
      linkId: hook.linkId,
      ids: lastOrder,
    });
    expect(dispatcherOfHook()?.revisions, 'revisions left behind').to.have.length(1);

    // The daemon takes the hook back to the manifests' chain without reloading a program.
    const converge = await runOnce();
    expect(converge.code, converge.stdout + converge.stderr).to.equal(0);
    expect(converge.stdout).not.to.include('program loaded');
    expect(kernelHook(kind)?.ids).to.deep.equal([leftId, rightId]);
  }

  describe('XdpProgram chains', () => {
    it('runs programs in priority order and goes on only on their proceedon codes', async () => {
      start();
      const chain = (secondVerdict: number, secondProceedOn?: string[]) => [
        xdpVerdict('third', 30),
        xdpVerdict('first', 10),
        xdpVerdict('second', 20, secondVerdict, secondProceedOn),
      ];
      const order = ['first', 'second', 'third'];

      workspace.writeManifest('xdp.yaml', chain(XDP_PASS));
      const passing = await chainSettles('xdp.yaml', order, 'xdp');
      expect(order.map((name) => chainPosition('xdp.yaml', name))).to.deep.equal([
        '1/3',
        '2/3',
        '3/3',
      ]);
      let before = readHits(passing.hits);
      expect(await veth.pingAFromB(4)).to.equal(4);
      await hitsGrowBy(passing.hits, before, [4, 4, 4]);

      // A drop is not in the default proceedon: the chain ends at the second program.
      workspace.writeManifest('xdp.yaml', chain(XDP_DROP));
      const dropping = await chainSettles('xdp.yaml', order, 'xdp', passing);
      expect(dropping.ids[1]).not.to.equal(passing.ids[1]);
      before = readHits(dropping.hits);
      expect(await veth.pingAFromB(3)).to.equal(0);
      await hitsGrowBy(dropping.hits, before, [3, 3, 0]);

      // With drop in its proceedon the chain goes on; the last pass ends it with the hook's pass.
      workspace.writeManifest('xdp.yaml', chain(XDP_DROP, ['pass', 'drop', 'dispatcher_return']));
      const goingOn = await chainSettles('xdp.yaml', order, 'xdp', dropping);
      expect(goingOn.ids).to.deep.equal(dropping.ids);
      before = readHits(goingOn.hits);
      expect(await veth.pingAFromB(3)).to.equal(3);
      await hitsGrowBy(goingOn.hits, before, [3, 3, 3]);
    });

    it('goes on after dispatcher_return and passes when the last program returns it', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [
        xdpVerdict('goes-on', 10, XDP_DISPATCHER_RETURN),
        xdpVerdict('ends', 20, XDP_DISPATCHER_RETURN),
      ]);
      const hook = await chainSettles('xdp.yaml', ['goes-on', 'ends'], 'xdp');
      const before = readHits(hook.hits);

      expect(await veth.pingAFromB(3)).to.equal(3);
      await hitsGrowBy(hook.hits, before, [3, 3]);
    });

    it('breaks a priority tie by name', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [
        xdpVerdict('b-prog', 50),
        xdpVerdict('a-prog', 50, XDP_DROP),
      ]);
      const hook = await chainSettles('xdp.yaml', ['a-prog', 'b-prog'], 'xdp');
      expect(chainPosition('xdp.yaml', 'a-prog')).to.equal('1/2');
      const before = readHits(hook.hits);

      expect(await veth.pingAFromB(3)).to.equal(0);
      await hitsGrowBy(hook.hits, before, [3, 0]);
    });

    it('chains 32 programs on one hook and refuses a 33rd, keeping the others', async () => {
      start();
      const names = Array.from({ length: 32 }, (_, n) => `member-${String(n).padStart(2, '0')}`);
      const members = (count: number) =>
        names.slice(0, count).map((name, n) => xdpVerdict(name, 100 + n));

      workspace.writeManifest('xdp.yaml', members(12));
      const twelve = await chainSettles('xdp.yaml', names.slice(0, 12), 'xdp');
      let before = readHits(twelve.hits);
      expect(await veth.pingAFromB(2)).to.equal(2);
      await hitsGrowBy(twelve.hits, before, Array(12).fill(2));

      workspace.writeManifest('xdp.yaml', members(32));
      const full = await chainSettles('xdp.yaml', names, 'xdp', twelve);
      expect(full.ids).to.have.length(32);
      expect(full.ids.slice(0, 12)).to.deep.equal(twelve.ids);
      before = readHits(full.hits);
      expect(await veth.pingAFromB(2)).to.equal(2);
      await hitsGrowBy(full.hits, before, Array(32).fill(2));

      // The newcomer would run first, but the programs already running keep their places.
      workspace.writeManifest('xdp.yaml', [...members(32), xdpVerdict('newcomer', 1)]);
      const refused = await eventually('newcomer NotLoaded', () => {
        const condition = workspace.condition('xdp.yaml', 'newcomer');
        return condition?.type === 'NotLoaded' && condition;
      });
      expect(refused.message).to.match(/\b32\b/);
      expect(refused.message).to.include(veth.ifA);
      expect(workspace.bpfProgram('xdp.yaml', 'newcomer')!.spec.programs ?? {}).to.deep.equal({});
      for (const name of names) {
        expect(workspace.condition('xdp.yaml', name)?.type, name).to.equal('Loaded');
      }
      expect(kernelHook('xdp')).to.deep.equal({
        dispatcherId: full.dispatcherId,
        linkId: full.linkId,
        ids: full.ids,
      });

      before = readHits(full.hits);
      expect(await veth.pingAFromB(2)).to.equal(2);
      await hitsGrowBy(full.hits, before, Array(32).fill(2));

      // Once a place frees up, the newcomer takes it, at the head of the chain.
      workspace.writeManifest('xdp.yaml', [...members(31), xdpVerdict('newcomer', 1)]);
      const order = ['newcomer', ...names.slice(0, 31)];
      const admitted = await chainSettles('xdp.yaml', order, 'xdp', full);
      expect(admitted.ids.slice(1)).to.deep.equal(full.ids.slice(0, 31));
      expect(chainPosition('xdp.yaml', 'newcomer')).to.equal('1/32');
    });

    it('counts each packet once while the daemon reorders the chain under traffic', async () => {
      start();
      const pair = (leftFirst: boolean) => [
        xdpVerdict('left', leftFirst ? 10 : 20),
        xdpVerdict('right', leftFirst ? 20 : 10),
      ];
      workspace.writeManifest('xdp.yaml', pair(true));
      let hook = await chainSettles('xdp.yaml', ['left', 'right'], 'xdp');
      const [leftId, rightId] = hook.ids;
      const [leftHits, rightHits] = hook.hits;
      const before = readHits([leftHits, rightHits]);

      stream = await UdpStream.start(veth);
      for (let reorder = 1; reorder <= DAEMON_REORDERS; reorder++) {
        // Traffic crossed the hook since the last swap, so every swap happens under load.
        const seen = readU64(leftHits);
        await eventually('traffic between swaps', () => readU64(leftHits) > seen);

        const leftFirst = reorder % 2 === 0;
        workspace.writeManifest('xdp.yaml', pair(leftFirst));
        const order = leftFirst ? ['left', 'right'] : ['right', 'left'];
        hook = await chainSettles('xdp.yaml', order, 'xdp', hook);
        expect(hook.ids).to.deep.equal(leftFirst ? [leftId, rightId] : [rightId, leftId]);
      }
      const count: StreamCount = await stream.stop();
      stream = undefined;

      expect(count.sent).to.be.greaterThan(0);
      const grown = readHits([leftHits, rightHits]).map((value, slot) => value - before[slot]);
      expect(grown).to.deep.equal([BigInt(count.sent), BigInt(count.sent)]);
      expect(workspace.programIdOf('xdp.yaml', 'left')).to.equal(leftId);
      expect(workspace.programIdOf('xdp.yaml', 'right')).to.equal(rightId);
    });

    it(`counts each packet once across ${KERNEL_API_REORDERS} installChain swaps`, async () => {
      const programs = [xdpVerdict('left', 10), xdpVerdict('right', 20)];
      await swapUnderTraffic('xdp', programs, XDP_DEFAULT_PROCEED_ON, KERNEL_API_REORDERS);
    });

    it('keeps the dispatcher and program ids across a restart', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [
        xdpVerdict('first', 10),
        xdpVerdict('second', 20),
        xdpVerdict('third', 30),
      ]);
      workspace.writeManifest('tc.yaml', [tcVerdict('tc-first', 'ingress', TC_ACT_OK)]);
      const hook = await chainSettles('xdp.yaml', ['first', 'second', 'third'], 'xdp');
      const tcHook = await chainSettles('tc.yaml', ['tc-first'], 'tc-ingress');
      const statusBefore = await bpfd(['status', '-o', 'json', ...workspace.flags()], veth.nsA);
      expect(statusBefore.code, statusBefore.stderr).to.equal(0);
      const hooksBefore = JSON.parse(statusBefore.stdout).hooks;
      expect(hooksBefore.map((h: { dispatcherId: number }) => h.dispatcherId).sort()).to.deep.equal(
        [hook.dispatcherId, tcHook.dispatcherId].sort(),
      );
      const stopped = await daemon!.stop();
      daemon = undefined;
      expect(stopped.code).to.equal(0);

      const again = await runOnce();
      expect(again.code, again.stdout + again.stderr).to.equal(0);
      expect(again.stdout).not.to.include('program loaded');
      expect(again.stdout).not.to.include('dispatcher chain installed');

      const statusAfter = await bpfd(['status', '-o', 'json', ...workspace.flags()], veth.nsA);
      expect(JSON.parse(statusAfter.stdout).hooks).to.deep.equal(hooksBefore);
      expect(kernelHook('xdp')).to.deep.equal({
        dispatcherId: hook.dispatcherId,
        linkId: hook.linkId,
        ids: hook.ids,
      });
      expect(kernelHook('tc-ingress')).to.deep.equal({
        dispatcherId: tcHook.dispatcherId,
        linkId: tcHook.linkId,
        ids: tcHook.ids,
      });
      ['first', 'second', 'third'].forEach((name, slot) => {
        expect(workspace.programIdOf('xdp.yaml', name)).to.equal(hook.ids[slot]);
        const annotations = workspace.bpfProgram('xdp.yaml', name)!.metadata.annotations;
        expect(annotations['bpfd.io/dispatcher-id']).to.equal(String(hook.dispatcherId));
      });
    });

    it('leaves a foreign XDP program attached and reports the conflict', async () => {
      const foreignObject = path.join(OBJECTS, 'test/xdp_verdict.o');
      const attachForeign = ['xdpgeneric', 'obj', foreignObject, 'sec', 'xdp'];
      await sh('ip', ['-n', veth.nsA, 'link', 'set', 'dev', veth.ifA, ...attachForeign]);
      const foreign = await xdpAttachments(veth.nsA, veth.ifA);
      expect(foreign).to.have.length(1);

      start();
      workspace.writeManifest('xdp.yaml', [xdpVerdict('ours', 10)]);
      const refused = await eventually('ours NotLoaded', () => {
        const condition = workspace.condition('xdp.yaml', 'ours');
        return condition?.type === 'NotLoaded' && condition;
      });
      expect(refused.message).to.include(veth.ifA);
      expect(refused.message).to.match(/already has a program|did not attach/);
      expect(await xdpAttachments(veth.nsA, veth.ifA)).to.deep.equal(foreign);
      expect(workspace.pins().filter((pin) => pin.includes('/dispatchers/'))).to.deep.equal([]);

      const stopped = await daemon!.stop();
      daemon = undefined;
      expect(stopped.code).to.equal(0);
      expect(await xdpAttachments(veth.nsA, veth.ifA)).to.deep.equal(foreign);
    });

    it('removes the dispatcher with the last program of its hook', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [xdpVerdict('stays', 10), xdpVerdict('goes', 20)]);
      const both = await chainSettles('xdp.yaml', ['stays', 'goes'], 'xdp');
      workspace.writeManifest('xdp.yaml', [xdpVerdict('stays', 10)]);
      const alone = await chainSettles('xdp.yaml', ['stays'], 'xdp', both);
      expect(await xdpAttachments(veth.nsA, veth.ifA)).to.deep.equal([
        { id: alone.dispatcherId, mode: 'driver' },
      ]);

      workspace.removeManifest('xdp.yaml');
      await eventually('no pins under dispatchers/', () =>
        workspace.pins().every((pin) => !pin.includes('/dispatchers/')),
      );
      expect(kernelObjectIds().links).not.to.include(alone.linkId);
      await eventually('dispatcher program freed', () => !programIds().has(alone.dispatcherId));
      expect(await xdpAttachments(veth.nsA, veth.ifA)).to.deep.equal([]);
    });
  });

  describe('TcProgram chains', () => {
    it(`counts each packet once across ${TC_REORDERS} installChain swaps on ingress`, async () => {
      // pipe is in the default proceedon, so both programs see every packet.
      const programs = [
        tcVerdict('left', 'ingress', TC_ACT_PIPE, 10),
        tcVerdict('right', 'ingress', TC_ACT_PIPE, 20),
      ];
      await swapUnderTraffic('tc-ingress', programs, TC_DEFAULT_PROCEED_ON, TC_REORDERS);
    });

    it('runs ingress and egress chains independently', async () => {
      start();
      workspace.writeManifest('tc.yaml', [
        tcVerdict('counts-in', 'ingress', TC_ACT_OK),
        tcVerdict('shoots-out', 'egress', TC_ACT_SHOT),
      ]);
      const ingress = await chainSettles('tc.yaml', ['counts-in'], 'tc-ingress');
      const egress = await chainSettles('tc.yaml', ['shoots-out'], 'tc-egress');
      const pins = [...ingress.hits, ...egress.hits];
      let before = readHits(pins);

      // Requests come in on ingress and are counted; egress shoots the replies.
      expect(await veth.pingAFromB(3)).to.equal(0);
      await hitsGrowBy(pins, before, [3, 3]);

      workspace.writeManifest('tc.yaml', [tcVerdict('counts-in', 'ingress', TC_ACT_OK)]);
      await eventually(
        'egress dispatcher removed',
        () =>
          kernelHook('tc-egress') === undefined &&
          workspace.pins().every((pin) => !pin.includes('/dispatchers/tc-egress/')),
      );
      expect(kernelHook('tc-ingress')).to.deep.equal({
        dispatcherId: ingress.dispatcherId,
        linkId: ingress.linkId,
        ids: ingress.ids,
      });
      expect(workspace.programIdOf('tc.yaml', 'counts-in')).to.equal(ingress.ids[0]);

      before = readHits(ingress.hits);
      expect(await veth.pingAFromB(3)).to.equal(3);
      await hitsGrowBy(ingress.hits, before, [3]);
    });
  });
});
