import path from 'node:path';

import { expect } from 'chai';

import { BpfdError } from '../../../src/errors.js';
import { isSidecarFileName, sidecarPath } from '../../../src/status/index.js';

describe('sidecarPath', () => {
  const manifestDir = '/etc/bpfd/programs.d';

  it('puts the sidecar beside a .yaml manifest', () => {
    expect(sidecarPath(`${manifestDir}/edge/xdp.yaml`, manifestDir)).to.equal(
      `${manifestDir}/edge/xdp.status.yaml`,
    );
  });

  it('keeps the .yml spelling', () => {
    expect(sidecarPath(`${manifestDir}/tc.yml`, manifestDir)).to.equal(
      `${manifestDir}/tc.status.yml`,
    );
  });

  it('mirrors nested folders under the status dir', () => {
    expect(
      sidecarPath(`${manifestDir}/site/a/xdp.yaml`, manifestDir, '/var/lib/bpfd/status'),
    ).to.equal('/var/lib/bpfd/status/site/a/xdp.status.yaml');
    expect(sidecarPath(`${manifestDir}/top.yml`, manifestDir, '/var/lib/bpfd/status')).to.equal(
      '/var/lib/bpfd/status/top.status.yml',
    );
  });

  it('resolves relative paths before mapping into the status dir', () => {
    const cwd = process.cwd();
    expect(sidecarPath('programs.d/a/x.yaml', 'programs.d/', 'status')).to.equal(
      path.join(cwd, 'status/a/x.status.yaml'),
    );
  });

  it('refuses a manifest outside the manifest dir when a status dir is set', () => {
    const attempt = () => sidecarPath('/etc/other/x.yaml', manifestDir, '/var/lib/bpfd/status');
    expect(attempt).to.throw(BpfdError).with.property('code', 'BPFD_E_STATUS');
  });

  it('refuses a file that is not a manifest', () => {
    const attempt = () => sidecarPath(`${manifestDir}/notes.txt`, manifestDir);
    expect(attempt).to.throw(BpfdError, /not a manifest/);
  });
});

describe('isSidecarFileName', () => {
  it('recognises both sidecar spellings, with or without folders', () => {
    expect(isSidecarFileName('xdp.status.yaml')).to.equal(true);
    expect(isSidecarFileName('/etc/bpfd/programs.d/a/tc.status.yml')).to.equal(true);
  });

  it('leaves manifests alone, including one named status.yaml', () => {
    expect(isSidecarFileName('xdp.yaml')).to.equal(false);
    expect(isSidecarFileName('status.yaml')).to.equal(false);
    expect(isSidecarFileName('xdp.status.yaml.bak')).to.equal(false);
  });
});
