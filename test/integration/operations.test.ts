import fs from 'node:fs';
import net from 'node:net';

import { expect } from 'chai';

import {
  bpfd,
  Daemon,
  eventually,
  programIds,
  sh,
  VethPair,
  Workspace,
  xdpCounter,
} from '../helpers/env.js';
import { DaemonLog } from '../helpers/daemon-log.js';

/** HTTP GET from inside the namespace the daemon listens in. */
async function get(netns: string, url: string): Promise<{ status: number; body: string }> {
  const script = `fetch(${JSON.stringify(url)}).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), () => process.stdout.write('{"status":0,"body":""}'))`;
  const out = await sh('nsenter', [`--net=/run/netns/${netns}`, process.execPath, '-e', script]);
  return JSON.parse(out) as { status: number; body: string };
}

function metricValue(body: string, name: string, labels = ''): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('operating the daemon (real kernel)', function () {
  this.timeout(120_000);
  let veth: VethPair;
  let workspace: Workspace;
  let daemon: Daemon | undefined;

  beforeEach(async () => {
    veth = await new VethPair().create();
    workspace = await Workspace.create({ resync: '* * * * * *' });
  });

  afterEach(async function () {
    await daemon?.stopAndReport(this.currentTest?.state === 'failed');
    daemon = undefined;
    await workspace.cleanup();
    await veth.cleanup();
  });

  const loaded = (file: string, name: string) => workspace.loaded(file, name);

  it('serves metrics that match the reconcile, and health and readiness', async () => {
    workspace.writeManifest('xdp.yaml', [xdpCounter('metered', veth.ifA)]);
    daemon = new Daemon(workspace, veth.nsA);
    const ready = await eventually(
      'readyz 200',
      async () => (await get(veth.nsA, `${workspace.metricsUrl}/readyz`)).status === 200,
    );
    expect(ready).to.equal(true);
    // ready means the first reconcile is done: the status is already there
    expect(workspace.condition('xdp.yaml', 'metered')?.type).to.equal('Loaded');

    const { status, body } = await get(veth.nsA, `${workspace.metricsUrl}/metrics`);
    expect(status).to.equal(200);
    expect(metricValue(body, 'bpfd_objects', 'kind="XdpProgram",state="loaded"')).to.equal(1);
    expect(metricValue(body, 'bpfd_objects', 'kind="TcProgram",state="loaded"')).to.equal(0);
    expect(metricValue(body, 'bpfd_kernel_programs')).to.equal(1);
    expect(metricValue(body, 'bpfd_dispatchers', 'hook="xdp"')).to.equal(1);
    expect(metricValue(body, 'bpfd_actions_total', 'action="load",result="success"')).to.equal(1);
    expect(metricValue(body, 'bpfd_reconcile_total', 'result="success"')! >= 1).to.equal(true);
    expect(body).to.include('process_resident_memory_bytes');
    expect(body).to.match(/^bpfd_program_runs_total\{kind="XdpProgram",name="metered"\} \d+$/m);
    expect((await get(veth.nsA, `${workspace.metricsUrl}/healthz`)).status).to.equal(200);
  });

  it('repairs drift on resync: a removed link pin or program pin comes back and is counted', async () => {
    workspace.writeManifest('xdp.yaml', [xdpCounter('drifting', veth.ifA)]);
    daemon = new Daemon(workspace, veth.nsA);
    await loaded('xdp.yaml', 'drifting');
    const [linkPin] = workspace.pins().filter((p) => p.endsWith('/link'));
    fs.rmSync(linkPin);
    await eventually('link pin back', () => fs.existsSync(linkPin));
    const net = await sh('nsenter', [
      `--net=/run/netns/${veth.nsA}`,
      'bpftool',
      'net',
      'show',
      'dev',
      veth.ifA,
    ]);
    expect(net).to.match(/xdp/);

    const programPin = workspace
      .pins()
      .find((p) => p.includes('/programs/') && p.endsWith('/prog'))!;
    const oldId = workspace.programIdOf('xdp.yaml', 'drifting');
    fs.rmSync(programPin);
    await eventually(
      'program reloaded',
      () => fs.existsSync(programPin) && workspace.programIdOf('xdp.yaml', 'drifting') !== oldId,
    );
    const { body } = await get(veth.nsA, `${workspace.metricsUrl}/metrics`);
    expect(metricValue(body, 'bpfd_drift_repaired_total')! >= 2).to.equal(true);
  });

  it('reloads the config on SIGHUP and reconciles at once', async () => {
    const selective = xdpCounter('labelled', veth.ifA, {
      nodeselector: { matchLabels: { role: 'edge' } },
    });
    workspace.writeManifest('xdp.yaml', [selective]);
    workspace.writeConfig({ resync: '0 0 1 1 *' });
    daemon = new Daemon(workspace, veth.nsA);
    await eventually(
      'NotSelected',
      () => workspace.condition('xdp.yaml', 'labelled')?.type === 'NotSelected',
    );

    workspace.writeConfig({ resync: '0 0 1 1 *', nodeLabels: { role: 'edge' } });
    daemon.child.kill('SIGHUP');
    await loaded('xdp.yaml', 'labelled');
  });

  it('keeps the running node name on SIGHUP and says the change needs a restart', async () => {
    workspace.writeManifest('xdp.yaml', [xdpCounter('rooted', veth.ifA)]);
    workspace.writeConfig({ resync: '0 0 1 1 *' });
    daemon = new Daemon(workspace, veth.nsA);
    const log = new DaemonLog(daemon.child);
    await loaded('xdp.yaml', 'rooted');
    const id = workspace.programIdOf('xdp.yaml', 'rooted');

    workspace.writeConfig({ resync: '0 0 1 1 *', nodeName: 'renamed-node' });
    const mark = log.mark();
    daemon.child.kill('SIGHUP');
    const { entry } = await log.waitFor('these config changes need a restart', mark);
    expect(entry.keys).to.deep.equal(['nodeName']);
    await log.waitFor('configuration reloaded', mark);
    workspace.writeManifest('xdp.yaml', [xdpCounter('rooted', veth.ifA, { priority: 7 })]);
    await eventually(
      'status rewritten',
      () =>
        workspace.bpfProgram('xdp.yaml', 'rooted')?.metadata.annotations['bpfd.io/priority'] ===
        '7',
    );
    expect(workspace.bpfProgram('xdp.yaml', 'rooted')!.metadata.name).to.equal('rooted-test-node');
    expect(workspace.programIdOf('xdp.yaml', 'rooted')).to.equal(id);
    expect(programIds().has(id!)).to.equal(true);
  });

  it('plan shows the exact changes, touches nothing, and exits 2 then 0', async () => {
    workspace.writeManifest('xdp.yaml', [xdpCounter('planned', veth.ifA)]);
    const planned = await bpfd(['plan', ...workspace.flags()], veth.nsA);
    expect(planned.code, planned.stderr).to.equal(2);
    expect(planned.stdout).to.include('load xdp/planned');
    expect(planned.stdout).to.include(`install chain on xdp on ${veth.ifA}: xdp/planned`);
    // nothing pinned, nothing on the interface (the kernel is shared with other tests, so
    // machine-wide program counts say nothing here)
    expect(workspace.pins()).to.deep.equal([]);
    const net = await sh('nsenter', [
      `--net=/run/netns/${veth.nsA}`,
      'ip',
      'link',
      'show',
      veth.ifA,
    ]);
    expect(net).not.to.match(/xdp/);

    const applied = await bpfd(['run', '--once', ...workspace.flags()], veth.nsA);
    expect(applied.code, applied.stderr).to.equal(0);
    const again = await bpfd(['plan', ...workspace.flags()], veth.nsA);
    expect(again.code).to.equal(0);
    expect(again.stdout).to.include('No changes');
  });

  it('status -o json matches the kernel', async () => {
    workspace.writeManifest('xdp.yaml', [
      xdpCounter('one', veth.ifA, { priority: 10 }),
      xdpCounter('two', veth.ifA, { priority: 20 }),
    ]);
    const applied = await bpfd(['run', '--once', ...workspace.flags()], veth.nsA);
    expect(applied.code, applied.stderr).to.equal(0);

    const result = await bpfd(['status', '-o', 'json', ...workspace.flags()], veth.nsA);
    expect(result.code).to.equal(0);
    const status = JSON.parse(result.stdout) as {
      objects: Array<{ name: string; condition: string; programIds: string[] }>;
      hooks: Array<{
        hook: string;
        interface: string;
        xdpMode: string;
        chain: Array<{ programId: number; object: string; priority: number; proceedon: unknown }>;
      }>;
    };
    const ids = status.objects.map((o) => Number(o.programIds[0]));
    expect(status.objects.map((o) => o.condition)).to.deep.equal(['Loaded', 'Loaded']);
    for (const id of ids) expect(programIds().has(id)).to.equal(true);
    expect(status.hooks).to.have.length(1);
    expect(status.hooks[0].interface).to.equal(veth.ifA);
    expect(status.hooks[0].chain.map((c) => c.programId)).to.deep.equal(ids);
    expect(status.hooks[0].chain.map((c) => c.object)).to.deep.equal(['xdp/one', 'xdp/two']);
    expect(status.hooks[0].chain.map((c) => c.priority)).to.deep.equal([10, 20]);
    expect(status.hooks[0].xdpMode).to.equal('native');
    const table = await bpfd(['status', ...workspace.flags()], veth.nsA);
    expect(table.stdout).to.match(/1\. xdp\/one\s+program \d+\s+priority 10\s+proceedon default/);

    const got = await bpfd(
      ['get', 'XdpProgram', 'two', '-o', 'json', ...workspace.flags()],
      veth.nsA,
    );
    expect(got.code).to.equal(0);
    expect(JSON.parse(got.stdout)[1].spec.programs).to.have.property(String(ids[1]));
  });

  it('exits 1 naming metrics.listen when the metrics port is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(workspace.metricsPort, '127.0.0.1', resolve));
    try {
      const result = await bpfd(['run', ...workspace.flags()]);
      expect(result.code).to.equal(1);
      expect(result.stderr).to.include(`metrics.listen 127.0.0.1:${workspace.metricsPort}`);
    } finally {
      taken.close();
    }
  });

  it('run --once exits 1 when a selected object is not loaded', async () => {
    workspace.writeManifest('xdp.yaml', [xdpCounter('absent', 'bgtnope0')]);
    const result = await bpfd(['run', '--once', ...workspace.flags()], veth.nsA);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.include('bgtnope0');
  });
});
