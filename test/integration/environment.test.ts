/**
 * Faults of the machine rather than of the manifests: a bpffs root that cannot be used, a
 * missing libbpf, an interface renamed under an attached program, a tracepoint the kernel does
 * not have, a map the kernel refuses to create, a full status disk. Each test checks what an
 * operator reads, that the rest keeps running, and that the daemon recovers once the fault is
 * gone where it can.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';
import yaml from 'js-yaml';

import {
  bpfd,
  Daemon,
  eventually,
  OBJECTS,
  programIds,
  sh,
  tracepointProgram,
  VethPair,
  Workspace,
  xdpProgram,
  xdpCounter as sharedXdpCounter,
} from '../helpers/env.js';
import { DaemonLog } from '../helpers/daemon-log.js';

function xdpCounter(name: string, iface: string, priority = 50): object {
  return sharedXdpCounter(name, iface, { priority });
}

function openatCounter(name: string, tracepoint = 'syscalls/sys_enter_openat'): object {
  return tracepointProgram(name, {
    sectionname: 'tracepoint_openat',
    name: tracepoint,
    bytecode: { path: path.join(OBJECTS, 'tracepoint_counter.o') },
  });
}

/** Mount points at or below `dir`, from this mount namespace's mount table. */
function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** Unmounts everything at or below `dir`, deepest first. */
async function unmountAll(dir: string): Promise<void> {
  for (const point of mountsUnder(dir).sort().reverse()) {
    await sh('umount', [point]).catch(() => sh('umount', ['-l', point]));
  }
}

/** The id of the XDP program on `ifname` inside `netns`, as iproute2 reports it. */
async function xdpProgramOn(netns: string, ifname: string): Promise<number | undefined> {
  const [link] = JSON.parse(await sh('ip', ['-n', netns, '-j', 'link', 'show', 'dev', ifname]));
  return link?.xdp?.prog?.id ?? link?.xdp?.attached?.[0]?.prog?.id;
}

describe('environment faults (real kernel)', function () {
  this.timeout(180_000);
  let scratch: string;
  let workspace: Workspace;

  beforeEach(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-env-'));
    workspace = await Workspace.create();
  });

  afterEach(async () => {
    await unmountAll(scratch);
    fs.rmSync(scratch, { recursive: true, force: true });
    await workspace.cleanup();
  });

  const runArgs = (bpffsRoot = workspace.bpffsRoot) => [
    'run',
    '--config',
    workspace.configFile,
    '--manifests',
    workspace.manifests,
    '--bpffs-root',
    bpffsRoot,
  ];

  describe('bpffs root', () => {
    it('exits with a clear error when the root lies on a read-only mount, and works once it is writable', async () => {
      const readOnly = path.join(scratch, 'ro');
      fs.mkdirSync(readOnly);
      await sh('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', readOnly]);
      const root = path.join(readOnly, 'bpfd');
      workspace.writeManifest('tp.yaml', [openatCounter('opens')]);

      const refused = await bpfd([...runArgs(root), '--once']);

      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.match(/^bpfd: bpffs root \S+\/ro\/bpfd is not usable: /);
      expect(refused.stderr).to.match(/EROFS|read-only file system/);
      expect(refused.stderr).to.include('[BPFD_E_BPFFS]');
      expect(refused.stderr).to.not.match(/^\s+at /m);
      expect(mountsUnder(readOnly)).to.deep.equal([readOnly]);

      await sh('mount', ['-o', 'remount,rw', readOnly]);
      const fixed = await bpfd([...runArgs(root), '--once']);
      expect(fixed.code, fixed.stderr).to.equal(0);
      expect(mountsUnder(readOnly)).to.deep.equal([readOnly, root]);
      expect(workspace.condition('tp.yaml', 'opens')?.type).to.equal('Loaded');
    });

    it('exits with a clear error when the root is a regular file', async () => {
      const file = path.join(scratch, 'not-a-dir');
      fs.writeFileSync(file, 'just a file\n');

      const refused = await bpfd([...runArgs(file), '--once']);

      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.include(`bpffs root ${file} is not usable`);
      expect(refused.stderr).to.include('ENOTDIR');
      expect(refused.stderr).to.include('[BPFD_E_BPFFS]');
      expect(mountsUnder(scratch)).to.deep.equal([]);
      expect(fs.readFileSync(file, 'utf8')).to.equal('just a file\n');
    });
  });

  describe('libbpf', () => {
    it('names the package to install when libbpf.so.1 cannot be loaded', async () => {
      // The dynamic loader searches LD_LIBRARY_PATH first and gives up on an empty file.
      const libraries = path.join(scratch, 'lib');
      fs.mkdirSync(libraries);
      fs.writeFileSync(path.join(libraries, 'libbpf.so.1'), '');
      const withoutLibbpf = { LD_LIBRARY_PATH: libraries };
      const manifest = workspace.writeManifest('tp.yaml', [openatCounter('opens')]);

      const refused = await bpfd([...runArgs(), '--once'], undefined, withoutLibbpf);

      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.match(
        /^bpfd: cannot load libbpf\.so\.1: install the libbpf1 package/,
      );
      expect(refused.stderr).to.include('file too short');
      expect(refused.stderr).to.include('[BPFD_E_LIBBPF]');
      expect(workspace.pins()).to.deep.equal([]);

      // What needs no kernel still works without libbpf.
      const validated = await bpfd(['validate', manifest], undefined, withoutLibbpf);
      expect(validated.code, validated.stdout + validated.stderr).to.equal(0);

      const fixed = await bpfd([...runArgs(), '--once']);
      expect(fixed.code, fixed.stderr).to.equal(0);
    });
  });

  describe('with a daemon running', () => {
    let veth: VethPair;
    let daemon: Daemon | undefined;
    let log: DaemonLog;

    beforeEach(async () => {
      veth = await new VethPair().create();
    });

    afterEach(async function () {
      const output = await daemon?.stop();
      if (this.currentTest?.state !== 'passed' && output) {
        process.stderr.write(`daemon exit ${output.code}\n${output.stdout}\n${output.stderr}\n`);
      }
      daemon = undefined;
      await veth.cleanup();
    });

    const start = () => {
      daemon = new Daemon(workspace, veth.nsA);
      log = new DaemonLog(daemon.child);
    };
    const conditionOf = (file: string, name: string) =>
      eventually(`a condition on ${name}`, () => workspace.condition(file, name));
    const loaded = (file: string, name: string) => workspace.loaded(file, name);
    const notLoaded = (file: string, name: string) =>
      eventually(`${name} NotLoaded`, () => {
        const condition = workspace.condition(file, name);
        return condition?.type === 'NotLoaded' && condition;
      });

    it('reports a renamed interface as awaited under its manifest name and attaches when the name is back', async () => {
      const ip = (...args: string[]) => sh('ip', ['-n', veth.nsA, ...args]);
      await veth.addPairInA('rnx0', 'rnx1');
      await ip('link', 'set', 'rnx0', 'up');
      workspace.writeManifest('follower.yaml', [xdpCounter('follower', 'rnx0')]);
      workspace.writeManifest('bystander.yaml', [xdpCounter('bystander', veth.ifA)]);
      start();
      await loaded('follower.yaml', 'follower');
      await loaded('bystander.yaml', 'bystander');
      const followerId = workspace.programIdOf('follower.yaml', 'follower')!;
      const bystanderId = workspace.programIdOf('bystander.yaml', 'bystander')!;
      expect(await xdpProgramOn(veth.nsA, 'rnx0')).to.be.a('number');

      await ip('link', 'set', 'rnx0', 'down');
      await ip('link', 'set', 'rnx0', 'name', 'rny0');
      await ip('link', 'set', 'rny0', 'up');

      // The manifest names rnx0: the interface now called rny0 is not it any more.
      const waiting = await notLoaded('follower.yaml', 'follower');
      expect(waiting.message).to.include('interface rnx0 does not exist');
      expect(waiting.message).to.include(`program id ${followerId} is loaded`);
      await eventually(
        'no program left on rny0',
        async () => !(await xdpProgramOn(veth.nsA, 'rny0')),
      );
      expect(programIds().has(followerId)).to.equal(true);
      expect(workspace.condition('bystander.yaml', 'bystander')?.type).to.equal('Loaded');
      expect(workspace.programIdOf('bystander.yaml', 'bystander')).to.equal(bystanderId);

      await ip('link', 'set', 'rny0', 'down');
      await ip('link', 'set', 'rny0', 'name', 'rnx0');
      await ip('link', 'set', 'rnx0', 'up');
      await loaded('follower.yaml', 'follower');
      expect(workspace.programIdOf('follower.yaml', 'follower')).to.equal(followerId);
      expect(await xdpProgramOn(veth.nsA, 'rnx0')).to.be.a('number');
      expect(workspace.programIdOf('bystander.yaml', 'bystander')).to.equal(bystanderId);
    });

    it('reports a tracepoint the kernel does not have as NotLoaded naming it, and runs the others', async () => {
      workspace.writeManifest('tp.yaml', [
        openatCounter('nowhere', 'syscalls/sys_enter_nope'),
        openatCounter('opens'),
      ]);
      workspace.writeManifest('xdp.yaml', [xdpCounter('bystander', veth.ifA)]);
      start();

      const missing = await notLoaded('tp.yaml', 'nowhere');

      expect(missing.message).to.include('tracepoint syscalls/sys_enter_nope does not exist');
      await loaded('tp.yaml', 'opens');
      await loaded('xdp.yaml', 'bystander');

      // Retries attach again without loading the program again each time.
      const pinsOfNowhere = () => workspace.pins().filter((p) => p.includes('/nowhere/'));
      const before = pinsOfNowhere();
      let after = log.mark();
      for (let retry = 0; retry < 2; retry++) {
        ({ after } = await log.waitFor(
          'action failed',
          after,
          (e) => e.object === 'tracepoint/nowhere',
        ));
      }
      expect(pinsOfNowhere()).to.deep.equal(before);

      workspace.writeManifest('tp.yaml', [
        openatCounter('nowhere', 'syscalls/sys_enter_close'),
        openatCounter('opens'),
      ]);
      await loaded('tp.yaml', 'nowhere');
      expect(pinsOfNowhere().some((p) => before.includes(p))).to.equal(false);
    });

    it('reports a map the kernel cannot create as NotLoaded with the errno, and runs the others', async () => {
      workspace.writeManifest('huge.yaml', [
        xdpProgram('oversized', {
          sectionname: 'xdp_huge_map',
          interfaceselector: { interface: veth.ifA },
          priority: 10,
          bytecode: { path: path.join(OBJECTS, 'test/huge_map.o') },
        }),
      ]);
      workspace.writeManifest('xdp.yaml', [xdpCounter('bystander', veth.ifA, 20)]);
      start();

      await loaded('xdp.yaml', 'bystander');
      const refused = await conditionOf('huge.yaml', 'oversized');

      expect(refused.type).to.equal('NotLoaded');
      expect(refused.message).to.include('huge_values');
      expect(refused.message).to.include('ENOMEM');
      const bystander = workspace.bpfProgram('xdp.yaml', 'bystander');
      expect(bystander?.metadata.annotations['bpfd.io/chain-position']).to.equal('1/1');
      expect(workspace.pins().filter((p) => p.includes('/oversized/'))).to.deep.equal([]);
    });

    it('keeps the kernel side going while the status disk is full and writes status once there is room', async () => {
      const statusDir = path.join(scratch, 'status');
      fs.mkdirSync(statusDir);
      await sh('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', statusDir]);
      workspace.writeConfig({ statusDir, logLevel: 'debug' });
      const statusOf = (name: string) => {
        const sidecar = path.join(statusDir, 'xdp.status.yaml');
        const documents = yaml.loadAll(fs.readFileSync(sidecar, 'utf8')) as Array<
          Record<string, any>
        >;
        const bpfProgram = documents.find((d) => d?.metadata?.labels?.ownedByProgram === name);
        return bpfProgram?.status.conditions.at(-1)?.type as string | undefined;
      };
      const programPinOf = (name: string) =>
        workspace.pins().find((p) => p.includes(`/programs/xdp/${name}/`) && p.endsWith('/prog'));

      workspace.writeManifest('xdp.yaml', [xdpCounter('first', veth.ifA, 10)]);
      start();
      await eventually('first Loaded in the status dir', () => statusOf('first') === 'Loaded');
      fillDisk(path.join(statusDir, 'filler'));

      const mark = log.mark();
      workspace.writeManifest('xdp.yaml', [
        xdpCounter('first', veth.ifA, 10),
        xdpCounter('second', veth.ifA, 20),
      ]);
      const { entry: failure } = await log.waitFor('cannot write status', mark);
      expect(String(failure.err)).to.include('ENOSPC');
      expect(failure.file).to.equal(path.join(workspace.manifests, 'xdp.yaml'));
      expect(programPinOf('second'), 'second loaded despite the full disk').to.not.equal(undefined);

      // Still serving: a change made while the disk is full reaches the kernel too.
      const thirdMark = log.mark();
      workspace.writeManifest('xdp.yaml', [
        xdpCounter('first', veth.ifA, 10),
        xdpCounter('second', veth.ifA, 20),
        xdpCounter('third', veth.ifA, 30),
      ]);
      await eventually('third loaded', () => programPinOf('third'));
      // Its status write failed as well, and took its temp file with it.
      await log.waitFor('cannot write status', thirdMark);
      expect(daemon!.child.exitCode).to.equal(null);
      expect(statusOf('second')).to.equal(undefined);
      expect(fs.readdirSync(statusDir).filter((name) => name.endsWith('.tmp'))).to.deep.equal([]);

      fs.rmSync(path.join(statusDir, 'filler'));
      daemon!.child.kill('SIGHUP');
      await eventually('the status catches up', () =>
        ['first', 'second', 'third'].every((name) => statusOf(name) === 'Loaded'),
      );
    });
  });
});

/** Writes `file` until the filesystem under it has no space left. */
function fillDisk(file: string): void {
  const chunk = Buffer.alloc(4096, 0x2a);
  const fd = fs.openSync(file, 'w');
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
}
