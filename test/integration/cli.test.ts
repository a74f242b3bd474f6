import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { expect } from 'chai';

import { bpfd, REPO } from '../helpers/env.js';

const run = promisify(execFile);

describe('bpfd command line', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-cli-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('validate accepts the shipped examples', async () => {
    const result = await bpfd(['validate', path.join(REPO, 'examples/manifests')]);
    expect(result.code, result.stdout).to.equal(0);
    expect(result.stdout).to.match(/3 files, 3 documents, 0 errors/);
  });

  it('validate names the file, document and field of each problem and exits 1', async () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(
      file,
      [
        'apiVersion: bpfd.io/v1alpha1',
        'kind: XdpProgram',
        'metadata: {name: ok}',
        'spec: {sectionname: s, nodeselector: {}, priority: 1, interfaceselector: {interface: eth0}, bytecode: {path: /x.o}}',
        '---',
        'apiVersion: bpfd.io/v1alpha1',
        'kind: XdpProgram',
        'metadata: {name: bad}',
        'spec: {sectionname: s, nodeselector: {}, priority: 1001, interfaceSelector: {interface: eth0}, bytecode: {path: /x.o}}',
      ].join('\n'),
    );
    const result = await bpfd(['validate', file]);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.include(`${file}: document 1: spec.priority`);
    expect(result.stdout).to.include('did you mean "interfaceselector"');
    expect(result.stdout).not.to.include('document 0');
  });

  it('schema prints a JSON Schema for each kind', async () => {
    const result = await bpfd(['schema']);
    expect(result.code).to.equal(0);
    const schemas = JSON.parse(result.stdout) as Record<string, { properties: object }>;
    expect(Object.keys(schemas).sort()).to.deep.equal([
      'BpfProgram',
      'TcProgram',
      'TracepointProgram',
      'XdpProgram',
    ]);
    expect(schemas.XdpProgram.properties).to.have.property('spec');
  });

  it('prints help with exit 0 and refuses an unknown command with exit 64', async () => {
    const help = await bpfd(['--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.include('validate PATH...');
    const unknown = await bpfd(['frobnicate']);
    expect(unknown.code).to.equal(64);
    expect(unknown.stderr).to.include('unknown command "frobnicate"');
    const badOption = await bpfd(['plan', '--colour']);
    expect(badOption.code).to.equal(64);
    expect(badOption.stderr).to.include('unknown option --colour');
  });

  it('refuses an output format a command does not print, and an unknown kind, with exit 64', async () => {
    const format = await bpfd(['status', '-o', 'xml']);
    expect(format.code).to.equal(64);
    expect(format.stderr).to.include('-o xml: status prints table, json, yaml');
    const kind = await bpfd(['get', 'XdpProgramm', 'x']);
    expect(kind.code).to.equal(64);
    expect(kind.stderr).to.include('unknown kind "XdpProgramm"');
  });

  it('stops quietly when its reader goes away', async () => {
    const { stdout, stderr } = await run('bash', [
      '-o',
      'pipefail',
      '-c',
      `${process.execPath} ${path.join(REPO, 'bin/bpfd')} schema | head -c 1`,
    ]);
    expect(stdout).to.equal('{');
    expect(stderr).to.equal('');
  });

  it('names the config file and key of a bad config and exits 1', async () => {
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(config, 'manifestDirs: /etc/x\n');
    const result = await bpfd(['plan', '--config', config]);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include(config);
    expect(result.stderr).to.include('manifestDir');
  });
});
