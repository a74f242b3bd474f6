import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { parseManifestText } from '../../../src/api/index.js';
import { builtinNodeLabels, loadConfig, type Config } from '../../../src/config/index.js';
import { buildDesired } from '../../../src/reconcile/index.js';
import type { EffectiveDocument } from '../../../src/watcher/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('buildDesired: bytecode files on this node', () => {
  let dir: string;
  let config: Config;
  let documents: EffectiveDocument[];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-desired-'));
    fs.writeFileSync(path.join(dir, 'prog.o'), 'first version of the object\n');
    const manifest = path.join(dir, 'tp.yaml');
    const text = [
      'apiVersion: bpfd.io/v1alpha1',
      'kind: TracepointProgram',
      'metadata:',
      '  name: opens',
      'spec:',
      '  name: syscalls/sys_enter_openat',
      '  sectionname: tracepoint/syscalls/sys_enter_openat',
      '  nodeselector: {}',
      '  bytecode:',
      '    path: prog.o',
      '',
    ].join('\n');
    fs.writeFileSync(manifest, text);
    const parsed = parseManifestText(manifest, text);
    documents = [{ file: manifest, index: 0, object: parsed.documents[0].object! }];
    const defaults = await loadConfig({
      defaultFile: path.join(dir, 'no-config.yaml'),
      overrides: { manifestDir: dir },
    });
    config = { ...defaults, strictModes: false };
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const digest = async () => {
    const [object] = await buildDesired(documents, {
      config,
      labels: builtinNodeLabels(config),
      running: () => undefined,
    });
    expect(object.blocker).to.equal(undefined);
    return object.program!.load.bytecodeDigest;
  };

  it('sees an object rewritten in place with the same size and its old mtime put back', async () => {
    const objectPath = path.join(dir, 'prog.o');
    const reference = path.join(dir, 'times');
    fs.writeFileSync(reference, '');
    execFileSync('touch', ['-r', objectPath, reference]);
    await sleep(150);
    const first = await digest();
    expect(await digest()).to.equal(first);

    fs.writeFileSync(objectPath, 'other version of the object\n');
    execFileSync('touch', ['-r', reference, objectPath]);
    expect(fs.statSync(objectPath, { bigint: true }).mtimeNs).to.equal(
      fs.statSync(reference, { bigint: true }).mtimeNs,
    );
    expect(fs.statSync(objectPath).size).to.equal('first version of the object\n'.length);
    expect(await digest()).to.not.equal(first);
  });
});
