import { symlink } from 'node:fs/promises';
import { join } from 'node:path';

import { expect } from 'chai';

import {
  collectManifestFiles,
  isManifestFileName,
  markDuplicates,
  parseManifestText,
  validatePaths,
} from '../../../src/api/index.js';
import { makeTempDir, TC_SAMPLE, withLine, writeTree, XDP_SAMPLE } from './samples.js';

describe('isManifestFileName', () => {
  it('takes .yaml and .yml files', () => {
    expect(isManifestFileName('/etc/bpfd/programs.d/xdp.yaml')).to.equal(true);
    expect(isManifestFileName('tc.yml')).to.equal(true);
  });

  it('skips hidden files, status sidecars and other extensions', () => {
    expect(isManifestFileName('.xdp.yaml')).to.equal(false);
    expect(isManifestFileName('dir/x.status.yaml')).to.equal(false);
    expect(isManifestFileName('x.status.yml')).to.equal(false);
    expect(isManifestFileName('README.md')).to.equal(false);
    expect(isManifestFileName('xdp.yaml.orig')).to.equal(false);
    expect(isManifestFileName('.yaml')).to.equal(false);
  });
});

describe('collectManifestFiles', () => {
  let dir: string;
  let remove: () => Promise<void>;

  beforeEach(async () => {
    ({ dir, remove } = await makeTempDir());
  });

  afterEach(async () => {
    await remove();
  });

  it('walks directories, skipping hidden entries and status sidecars, sorted', async () => {
    await writeTree(dir, {
      'b.yml': '',
      'a.yaml': '',
      'a.status.yaml': '',
      'notes.txt': '',
      '.hidden.yaml': '',
      '.git/config.yaml': '',
      'edge/z.yaml': '',
      'edge/.cache/y.yaml': '',
      'edge/x.status.yml': '',
    });

    const files = await collectManifestFiles([dir]);

    expect(files).to.deep.equal([
      join(dir, 'a.yaml'),
      join(dir, 'b.yml'),
      join(dir, 'edge/z.yaml'),
    ]);
  });

  it('takes files named explicitly as given, once each', async () => {
    await writeTree(dir, { 'one.yaml': '', 'manifest.txt': '' });
    const named = join(dir, 'manifest.txt');

    const files = await collectManifestFiles([named, dir, join(dir, 'one.yaml')]);

    expect(files).to.deep.equal([named, join(dir, 'one.yaml')]);
  });

  it('keeps a missing path so that reading it reports the problem', async () => {
    const missing = join(dir, 'missing.yaml');

    expect(await collectManifestFiles([missing])).to.deep.equal([missing]);
  });

  it('follows a symlinked directory once, even in a loop', async () => {
    await writeTree(dir, { 'real/p.yaml': '' });
    await symlink(join(dir, 'real'), join(dir, 'real', 'loop'));

    const files = await collectManifestFiles([dir]);

    expect(files).to.deep.equal([join(dir, 'real/p.yaml')]);
  });
});

describe('markDuplicates', () => {
  const renamed = (sample: string, name: string) =>
    sample.replace(/^ {2}name: .*$/m, `  name: ${name}`);

  it('keeps the first of two objects with one kind and name, across files', () => {
    const first = parseManifestText('a.yaml', renamed(XDP_SAMPLE, 'shared'));
    const second = parseManifestText(
      'b.yaml',
      `${renamed(TC_SAMPLE, 'shared')}---\n${renamed(XDP_SAMPLE, 'shared')}`,
    );
    // Given out of order on purpose: (file, index) order decides, not argument order.
    const documents = [...second.documents, ...first.documents];

    markDuplicates(documents);

    const [tc, laterXdp] = second.documents;
    const [firstXdp] = first.documents;
    expect(firstXdp!.errors).to.deep.equal([]);
    expect(firstXdp!.object).to.not.equal(undefined);
    expect(tc!.errors).to.deep.equal([]);
    expect(laterXdp!.object).to.equal(undefined);
    expect(laterXdp!.errors).to.have.length(1);
    const error = laterXdp!.errors[0]!;
    expect(error.file).to.equal('b.yaml');
    expect(error.documentIndex).to.equal(1);
    expect(error.fieldPath).to.equal('metadata.name');
    expect(error.message).to.contain(
      'XdpProgram "shared" is already defined in a.yaml (document 0)',
    );
  });

  it('lets no invalid document claim a name', () => {
    const invalid = renamed(XDP_SAMPLE, 'shared').replace(/priority: \d+/, 'priority: 5000');
    const first = parseManifestText('a.yaml', invalid);
    const second = parseManifestText('b.yaml', renamed(XDP_SAMPLE, 'shared'));
    expect(first.documents[0]!.errors).to.not.deep.equal([]);

    markDuplicates([...first.documents, ...second.documents]);

    expect(second.documents[0]!.errors).to.deep.equal([]);
    expect(second.documents[0]!.object).to.not.equal(undefined);
  });

  it('flags a duplicate within one file and adds nothing when run again', () => {
    const parsed = parseManifestText('one.yaml', `${XDP_SAMPLE}---\n${XDP_SAMPLE}`);

    markDuplicates(parsed.documents);
    markDuplicates(parsed.documents);

    expect(parsed.documents[0]!.errors).to.deep.equal([]);
    expect(parsed.documents[1]!.errors).to.have.length(1);
    expect(parsed.documents[1]!.errors[0]!.message).to.contain('one.yaml (document 0)');
  });
});

describe('validatePaths', () => {
  let dir: string;
  let remove: () => Promise<void>;

  beforeEach(async () => {
    ({ dir, remove } = await makeTempDir());
  });

  afterEach(async () => {
    await remove();
  });

  it('checks a directory as the daemon would, duplicates across files included', async () => {
    await writeTree(dir, {
      'a.yaml': XDP_SAMPLE,
      'b/tc.yaml': withLine(TC_SAMPLE, 'priority:', 'priority: 5000'),
      'c.yaml': XDP_SAMPLE,
      'c.status.yaml': 'not: [valid',
      '.git/HEAD.yaml': 'not: [valid',
    });

    const { files, errorCount } = await validatePaths([dir]);

    expect(files.map((f) => f.file)).to.deep.equal([
      join(dir, 'a.yaml'),
      join(dir, 'b/tc.yaml'),
      join(dir, 'c.yaml'),
    ]);
    expect(errorCount).to.equal(2);
    expect(files[1]!.documents[0]!.errors[0]!.fieldPath).to.equal('spec.priority');
    expect(files[2]!.documents[0]!.errors[0]!.message).to.contain('already defined');
  });

  it('counts an unreadable file as one error', async () => {
    const { files, errorCount } = await validatePaths([join(dir, 'nope.yaml')]);

    expect(errorCount).to.equal(1);
    expect(files[0]!.fileError?.message).to.contain('cannot be read');
  });

  it('finds nothing wrong in valid manifests', async () => {
    await writeTree(dir, { 'ok.yaml': `${XDP_SAMPLE}---\n${TC_SAMPLE}` });

    const { errorCount } = await validatePaths([dir]);

    expect(errorCount).to.equal(0);
  });
});
