import fs from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';

import { OBJECTS, VethPair, Workspace, xdpCounter } from '../helpers/env.js';

function counter(iface: string, objectPath?: string) {
  return xdpCounter('guarded', iface, objectPath ? { bytecode: { path: objectPath } } : {});
}

describe('hostile filesystem (real kernel)', function () {
  this.timeout(60_000);
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

  const once = () => workspace.runOnce(veth.nsA);
  const invalidMessage = () =>
    workspace
      .statusOf('x.yaml')[0]
      ?.status?.conditions?.find((c: { type: string }) => c.type === 'Invalid')?.message as
      string | undefined;

  it('refuses a manifest that group or others can write, and loads it once fixed', async () => {
    const file = workspace.writeManifest('x.yaml', [counter(veth.ifA)]);
    fs.chmodSync(file, 0o666);
    const refused = await once();
    expect(refused.code).to.equal(1);
    expect(invalidMessage()).to.include('writable by group or others (mode 0666)');
    expect(workspace.pins()).to.deep.equal([]);

    fs.chmodSync(file, 0o644);
    expect((await once()).code).to.equal(0);
    expect(workspace.condition('x.yaml', 'guarded')?.type).to.equal('Loaded');
  });

  it('refuses manifests in a directory a non-root user owns', async () => {
    const sub = path.join(workspace.manifests, 'team');
    fs.mkdirSync(sub);
    fs.chownSync(sub, 65534, 65534);
    workspace.writeManifest('team/x.yaml', [counter(veth.ifA)]);
    expect((await once()).code).to.equal(1);
    const message = workspace.statusOf('team/x.yaml')[0]?.status?.conditions?.at(-1)
      ?.message as string;
    expect(message).to.include('belongs to uid 65534');
    expect(workspace.pins()).to.deep.equal([]);
  });

  it('accepts such files when strictModes is off', async () => {
    workspace.writeConfig({ strictModes: false });
    const file = workspace.writeManifest('x.yaml', [counter(veth.ifA)]);
    fs.chmodSync(file, 0o666);
    expect((await once()).code).to.equal(0);
    expect(workspace.condition('x.yaml', 'guarded')?.type).to.equal('Loaded');
  });

  it('refuses bytecode outside bytecodeRoots, including through a symlink', async () => {
    const allowed = path.join(workspace.dir, 'allowed');
    fs.mkdirSync(allowed);
    workspace.writeConfig({ bytecodeRoots: [allowed] });
    const link = path.join(allowed, 'escape.o');
    fs.symlinkSync(path.join(OBJECTS, 'xdp_counter.o'), link);
    workspace.writeManifest('x.yaml', [counter(veth.ifA, link)]);
    expect((await once()).code).to.equal(1);
    const condition = workspace.condition('x.yaml', 'guarded');
    expect(condition?.type).to.equal('BytecodeSelectorError');
    expect(condition?.message).to.include('outside the allowed bytecodeRoots');

    fs.rmSync(link);
    fs.copyFileSync(path.join(OBJECTS, 'xdp_counter.o'), link);
    expect((await once()).code).to.equal(0);
    expect(workspace.condition('x.yaml', 'guarded')?.type).to.equal('Loaded');
  });

  it('never writes status through a symlink planted at the sidecar path', async () => {
    const victim = path.join(workspace.dir, 'victim.txt');
    fs.writeFileSync(victim, 'precious\n');
    fs.symlinkSync(victim, path.join(workspace.manifests, 'x.status.yaml'));
    workspace.writeManifest('x.yaml', [counter(veth.ifA)]);
    expect((await once()).code).to.equal(0);
    expect(fs.readFileSync(victim, 'utf8')).to.equal('precious\n');
    expect(fs.lstatSync(path.join(workspace.manifests, 'x.status.yaml')).isSymbolicLink()).to.equal(
      false,
    );
  });
});
