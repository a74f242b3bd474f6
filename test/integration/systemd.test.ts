import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { expect } from 'chai';

import {
  Daemon,
  eventually,
  OBJECTS,
  REPO,
  u32,
  VethPair,
  Workspace,
  xdpProgram,
} from '../helpers/env.js';
import { NotifySocket } from '../helpers/notify-socket.js';

const run = promisify(execFile);

describe('systemd integration', function () {
  this.timeout(60_000);

  it('the unit file passes systemd-analyze verify', async () => {
    // verify wants the binary to exist: check the unit as installed, pointing at this checkout
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-unit-'));
    const unit = path.join(dir, 'bpfd.service');
    const text = fs.readFileSync(path.join(REPO, 'systemd/bpfd.service'), 'utf8');
    fs.writeFileSync(unit, text.replaceAll('/usr/local/bin/bpfd', path.join(REPO, 'bin/bpfd')));
    const { stderr } = await run('systemd-analyze', ['verify', unit])
      .finally(() => fs.rmSync(dir, { recursive: true }))
      .catch((err) => {
        throw new Error(`systemd-analyze verify failed:\n${err.stderr ?? err}`);
      });
    expect(stderr).not.to.match(/bpfd\.service:\d+:/);
  });

  describe('notify protocol (Type=notify, watchdog)', () => {
    let veth: VethPair;
    let workspace: Workspace;
    let notify: NotifySocket;
    let daemon: Daemon | undefined;

    beforeEach(async () => {
      veth = await new VethPair().create();
      workspace = await Workspace.create();
      notify = new NotifySocket(path.join(workspace.dir, 'notify.sock'));
    });

    afterEach(async () => {
      await daemon?.stop();
      daemon = undefined;
      notify.close();
      await workspace.cleanup();
      await veth.cleanup();
    });

    it('sends READY=1 only after the first reconcile, then watchdog pings, then STOPPING=1', async () => {
      workspace.writeManifest('xdp.yaml', [
        xdpProgram('notified', {
          sectionname: 'stats',
          interfaceselector: { interface: veth.ifA },
          globaldata: { verdict: u32(2) },
          bytecode: { path: path.join(OBJECTS, 'xdp_counter.o') },
        }),
      ]);
      daemon = new Daemon(workspace, veth.nsA, [], {
        NOTIFY_SOCKET: notify.path,
        WATCHDOG_USEC: '200000',
      });
      await eventually('READY=1', () => notify.drain().some((m) => m.startsWith('READY=1')));
      // ready implies the first reconcile wrote its status
      expect(workspace.condition('xdp.yaml', 'notified')?.type).to.equal('Loaded');
      await eventually(
        'two watchdog pings',
        () => notify.drain().filter((m) => m === 'WATCHDOG=1').length >= 2,
      );

      const stopped = await daemon.stop();
      expect(stopped.code).to.equal(0);
      expect(notify.drain()).to.include('STOPPING=1');
    });
  });
});
