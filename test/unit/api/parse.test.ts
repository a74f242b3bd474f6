import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { expect } from 'chai';

import { parseManifestFile, parseManifestText } from '../../../src/api/index.js';
import { ManifestError } from '../../../src/errors.js';
import {
  BPFPROGRAM_SAMPLE,
  makeTempDir,
  TC_SAMPLE,
  TRACEPOINT_SAMPLE,
  writeTree,
  XDP_SAMPLE,
} from './samples.js';

/** A classic "billion laughs": 12 levels of 9 aliases each, 9^12 values once expanded. */
function aliasBomb(): string {
  const lines = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let level = 1; level < 12; level++) {
    lines.push(
      `a${level}: &a${level} [${Array(9)
        .fill(`*a${level - 1}`)
        .join(', ')}]`,
    );
  }
  return `${XDP_SAMPLE}${lines.join('\n')}\n`;
}

describe('parseManifestText', () => {
  it('parses every document of a multi-document file in order', () => {
    const parsed = parseManifestText(
      'all.yaml',
      `${XDP_SAMPLE}---\n${TC_SAMPLE}---\n${TRACEPOINT_SAMPLE}`,
    );

    expect(parsed.fileError).to.equal(undefined);
    expect(parsed.file).to.equal('all.yaml');
    expect(parsed.documents.map((d) => [d.index, d.kind, d.errors.length])).to.deep.equal([
      [0, 'XdpProgram', 0],
      [1, 'TcProgram', 0],
      [2, 'TracepointProgram', 0],
    ]);
  });

  it('skips empty documents, counting them in the index', () => {
    const text = `---\n${XDP_SAMPLE}---\n# nothing here\n---\n${TC_SAMPLE}---\n`;

    const parsed = parseManifestText('gaps.yaml', text);

    expect(parsed.fileError).to.equal(undefined);
    expect(parsed.documents.map((d) => [d.index, d.kind])).to.deep.equal([
      [0, 'XdpProgram'],
      [2, 'TcProgram'],
    ]);
  });

  it('gives an empty file no documents and no error', () => {
    const parsed = parseManifestText('empty.yaml', '# only a comment\n');

    expect(parsed).to.deep.equal({ file: 'empty.yaml', documents: [] });
  });

  it('accepts BpfProgram documents without making them objects', () => {
    const parsed = parseManifestText('mixed.yaml', `${BPFPROGRAM_SAMPLE}---\n${XDP_SAMPLE}`);

    expect(parsed.documents.map((d) => d.errors.length)).to.deep.equal([0, 0]);
    expect(parsed.documents.map((d) => d.object?.kind)).to.deep.equal([undefined, 'XdpProgram']);
  });

  it('reports invalid YAML once for the file, with the line', () => {
    const text = `${XDP_SAMPLE}---\napiVersion: bpfd.io/v1alpha1\nkind: [TcProgram\nmetadata: {}\n`;

    const parsed = parseManifestText('broken.yaml', text);

    expect(parsed.documents).to.deep.equal([]);
    const error = parsed.fileError!;
    expect(error).to.be.instanceOf(ManifestError);
    expect(error.file).to.equal('broken.yaml');
    expect(error.documentIndex).to.equal(undefined);
    expect(error.fieldPath).to.equal(undefined);
    expect(error.message).to.match(/^broken\.yaml: is not valid YAML at line 2[0-9], column/);
  });

  it('reports a repeated key as invalid YAML with its line', () => {
    const parsed = parseManifestText('twice.yaml', 'apiVersion: a\nkind: b\nkind: c\n');

    expect(parsed.fileError?.message).to.contain('line 3');
    expect(parsed.fileError?.message).to.contain('duplicated mapping key');
  });

  it('stops an alias bomb promptly with an error on the document', () => {
    const started = Date.now();

    const parsed = parseManifestText('bomb.yaml', aliasBomb());

    // Generous bound: expanding the bomb would take hours, refusing it takes milliseconds.
    expect(Date.now() - started).to.be.below(5000);
    const [document] = parsed.documents;
    expect(document!.errors).to.have.length(1);
    expect(document!.errors[0]!.file).to.equal('bomb.yaml');
    expect(document!.errors[0]!.documentIndex).to.equal(0);
    expect(document!.errors[0]!.fieldPath).to.equal(undefined);
    expect(document!.errors[0]!.message).to.contain('more than 100000 values');
    expect(document!.object).to.equal(undefined);
  });

  it('refuses a document nested deeper than 64 levels', () => {
    const deep = `${'['.repeat(70)}${']'.repeat(70)}`;

    const parsed = parseManifestText('deep.yaml', `${XDP_SAMPLE}extra: ${deep}\n`);

    const error = parsed.documents[0]!.errors[0]!;
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain('more than 64 levels');
  });

  it('accepts nesting of exactly 64 levels as far as depth goes', () => {
    const nested = `${'['.repeat(63)}${']'.repeat(63)}`;

    const parsed = parseManifestText('deep.yaml', `${XDP_SAMPLE}extra: ${nested}\n`);

    const messages = parsed.documents[0]!.errors.map((error) => error.message);
    expect(messages.join('\n')).to.not.contain('levels');
    expect(messages.join('\n')).to.contain('unknown field');
  });

  it('refuses text over 1 MiB without parsing it', () => {
    const text = `${XDP_SAMPLE}# ${'x'.repeat(2 * 1024 * 1024)}\n`;

    const parsed = parseManifestText('huge.yaml', text);

    expect(parsed.documents).to.deep.equal([]);
    expect(parsed.fileError?.file).to.equal('huge.yaml');
    expect(parsed.fileError?.message).to.contain('1 MiB');
  });

  it('rejects documents that are not mappings', () => {
    const parsed = parseManifestText('shapes.yaml', '- a\n- b\n---\njust text\n---\n42\n');

    expect(parsed.documents.map((d) => d.index)).to.deep.equal([0, 1, 2]);
    for (const document of parsed.documents) {
      expect(document.errors).to.have.length(1);
      expect(document.errors[0]!.documentIndex).to.equal(document.index);
      expect(document.errors[0]!.message).to.contain('must be a mapping with apiVersion, kind');
    }
  });

  it('reads timestamps and other YAML 1.1 forms as plain strings', () => {
    const text = XDP_SAMPLE.replace(
      'name: xdp-pass-all-nodes',
      'name: xdp-pass-all-nodes\n  creationTimestamp: 2023-06-01T10:00:00Z',
    );

    const parsed = parseManifestText('time.yaml', text);

    expect(parsed.documents[0]!.errors).to.deep.equal([]);
    expect(parsed.documents[0]!.object?.metadata.creationTimestamp).to.equal(
      '2023-06-01T10:00:00Z',
    );
  });

  it('refuses a file of more than 10000 documents', () => {
    const parsed = parseManifestText('flood.yaml', 'a: 1\n---\n'.repeat(10_001));

    expect(parsed.documents).to.deep.equal([]);
    expect(parsed.fileError?.message).to.contain('holds 10001 documents');
  });

  it('never throws on arbitrary bytes', () => {
    // A fixed linear congruential sequence: the same "random" files on every run.
    let seed = 12345;
    const nextByte = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed & 0xff;
    };

    for (let round = 0; round < 200; round++) {
      const bytes = Buffer.from(Array.from({ length: 64 + round * 20 }, nextByte));
      for (const text of [bytes.toString('utf8'), bytes.toString('latin1')]) {
        const parsed = parseManifestText('fuzz.yaml', text);
        const problems = parsed.documents.flatMap((d) => d.errors).length;
        expect(parsed.fileError !== undefined || problems > 0 || parsed.documents.length === 0).to
          .be.true;
      }
    }
  });

  it('reports binary text as not YAML instead of throwing', () => {
    const text = `apiVersion: \u0000\u0001\u0002\u0003garbage`;

    const parsed = parseManifestText('blob.yaml', text);

    expect(parsed.fileError?.file).to.equal('blob.yaml');
    expect(parsed.fileError?.message).to.contain('not text');
  });
});

describe('parseManifestFile', () => {
  let dir: string;
  let remove: () => Promise<void>;

  beforeEach(async () => {
    ({ dir, remove } = await makeTempDir());
  });

  afterEach(async () => {
    await remove();
  });

  it('reads and parses a manifest file', async () => {
    await writeTree(dir, { 'xdp.yaml': XDP_SAMPLE });

    const parsed = await parseManifestFile(join(dir, 'xdp.yaml'));

    expect(parsed.fileError).to.equal(undefined);
    expect(parsed.documents[0]!.file).to.equal(join(dir, 'xdp.yaml'));
    expect(parsed.documents[0]!.object?.metadata.name).to.equal('xdp-pass-all-nodes');
  });

  it('refuses a 2 MiB file', async () => {
    const file = join(dir, 'huge.yaml');
    await writeTree(dir, { 'huge.yaml': `${XDP_SAMPLE}# ${'x'.repeat(2 * 1024 * 1024)}\n` });

    const parsed = await parseManifestFile(file);

    expect(parsed.documents).to.deep.equal([]);
    expect(parsed.fileError?.file).to.equal(file);
    expect(parsed.fileError?.message).to.match(
      /is 209[0-9]+ bytes; files larger than .* \(1 MiB\)/,
    );
  });

  it('reports binary garbage clearly and never throws', async () => {
    const file = join(dir, 'garbage.yaml');
    await writeTree(dir, {
      'garbage.yaml': Buffer.concat([Buffer.from([0xff, 0xfe, 0]), randomBytes(8192)]),
    });

    const parsed = await parseManifestFile(file);

    expect(parsed.documents).to.deep.equal([]);
    expect(parsed.fileError?.file).to.equal(file);
    expect(parsed.fileError?.message).to.contain('is not UTF-8 text');
  });

  it('reports a missing file as unreadable', async () => {
    const file = join(dir, 'gone.yaml');

    const parsed = await parseManifestFile(file);

    expect(parsed.fileError?.file).to.equal(file);
    expect(parsed.fileError?.message).to.contain('cannot be read');
    expect(parsed.fileError?.message).to.contain('ENOENT');
  });

  it('reports a directory as not a regular file', async () => {
    await mkdir(join(dir, 'sub.yaml'));

    const parsed = await parseManifestFile(join(dir, 'sub.yaml'));

    expect(parsed.fileError?.message).to.contain('is not a regular file');
  });
});
