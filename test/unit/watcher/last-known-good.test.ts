import { expect } from 'chai';
import type { ParsedDocument, ParsedFile, ProgramObject } from '../../../src/api/index.js';
import { ManifestError } from '../../../src/errors.js';
import { buildFileView, holdFileView } from '../../../src/watcher/last-known-good.js';
import type { FileView } from '../../../src/watcher/index.js';

const FILE = '/etc/bpfd/programs.d/chain.yaml';

function program(name: string, priority: number, kind = 'XdpProgram'): ProgramObject {
  const document = {
    apiVersion: 'bpfd.io/v1alpha1',
    kind,
    metadata: { name },
    spec: { sectionname: 'pass', priority },
  };
  return document as unknown as ProgramObject;
}

function valid(index: number, object: ProgramObject): ParsedDocument {
  return { file: FILE, index, kind: object.kind, name: object.metadata.name, object, errors: [] };
}

function invalid(index: number, kind?: string, name?: string): ParsedDocument {
  const error = new ManifestError('priority is outside 0-1000', {
    file: FILE,
    documentIndex: index,
  });
  return { file: FILE, index, kind, name, errors: [error] };
}

function parsedFile(...documents: ParsedDocument[]): ParsedFile {
  return { file: FILE, documents };
}

function summary(view: FileView): string[] {
  return view.effective.map(({ index, object, retained }) => {
    const priority = 'priority' in object.spec ? object.spec.priority : undefined;
    return `${index}:${object.metadata.name}@${String(priority)}${retained ? '+retained' : ''}`;
  });
}

describe('last-known-good', () => {
  const original = buildFileView(
    parsedFile(valid(0, program('alpha', 10)), valid(1, program('beta', 20))),
    undefined,
  );

  it('makes every valid document of a new file effective', () => {
    expect(summary(original)).to.deep.equal(['0:alpha@10', '1:beta@20']);
  });

  it('makes nothing effective for a new file with a file error', () => {
    const fileError = new ManifestError('not YAML', { file: FILE });
    const view = buildFileView({ file: FILE, documents: [], fileError }, undefined);

    expect(view.effective).to.deep.equal([]);
    expect(view.parsed.fileError).to.equal(fileError);
  });

  it('keeps all last objects with the file error as reason', () => {
    const fileError = new ManifestError('not YAML', { file: FILE });
    const view = buildFileView({ file: FILE, documents: [], fileError }, original);

    expect(summary(view)).to.deep.equal(['0:alpha@10+retained', '1:beta@20+retained']);
    expect(view.effective[0].retained?.reason).to.equal(fileError.message);
  });

  it('keeps a copy found by kind and name at the index of the broken document', () => {
    const edited = parsedFile(invalid(0, 'XdpProgram', 'beta'), valid(1, program('alpha', 11)));
    const view = buildFileView(edited, original);

    expect(summary(view)).to.deep.equal(['0:beta@20+retained', '1:alpha@11']);
    expect(view.effective[0].retained?.reason).to.match(/priority is outside/);
  });

  it('keeps nothing for a broken document with a name the file never had', () => {
    const edited = parsedFile(valid(0, program('alpha', 10)), invalid(1, 'XdpProgram', 'gamma'));

    expect(summary(buildFileView(edited, original))).to.deep.equal(['0:alpha@10']);
  });

  it('uses the copy at the same index when the name cannot be read', () => {
    const edited = parsedFile(valid(0, program('alpha', 10)), invalid(1, 'XdpProgram'));

    expect(summary(buildFileView(edited, original))).to.deep.equal([
      '0:alpha@10',
      '1:beta@20+retained',
    ]);
  });

  it('uses the copy at the same index when the kind is not a program kind', () => {
    const edited = parsedFile(valid(0, program('alpha', 10)), invalid(1, 'XdpProgrm', 'beta'));

    expect(summary(buildFileView(edited, original))).to.deep.equal([
      '0:alpha@10',
      '1:beta@20+retained',
    ]);
  });

  it('never keeps a copy of an object the file now defines validly', () => {
    const edited = parsedFile(invalid(0), valid(1, program('alpha', 12)));

    expect(summary(buildFileView(edited, original))).to.deep.equal(['1:alpha@12']);
  });

  it('keeps a copy only once when two broken documents point at it', () => {
    const edited = parsedFile(invalid(0, 'XdpProgram', 'beta'), invalid(1));

    expect(summary(buildFileView(edited, original))).to.deep.equal(['0:beta@20+retained']);
  });

  it('carries a kept copy through a later file error', () => {
    const partly = buildFileView(
      parsedFile(valid(0, program('alpha', 11)), invalid(1, 'XdpProgram', 'beta')),
      original,
    );
    const fileError = new ManifestError('not YAML', { file: FILE });
    const broken = buildFileView({ file: FILE, documents: [], fileError }, partly);
    const repaired = buildFileView(parsedFile(valid(0, program('alpha', 11))), broken);

    expect(summary(broken)).to.deep.equal(['0:alpha@11+retained', '1:beta@20+retained']);
    expect(summary(repaired)).to.deep.equal(['0:alpha@11']);
  });

  it('makes nothing effective for a valid document that is not a program', () => {
    const observed: ParsedDocument = {
      file: FILE,
      index: 1,
      kind: 'BpfProgram',
      name: 'beta',
      errors: [],
    };
    const edited = parsedFile(valid(0, program('alpha', 10)), observed);

    expect(summary(buildFileView(edited, original))).to.deep.equal(['0:alpha@10']);
  });

  it('holds every object of a file for a reason from outside the file', () => {
    const held = holdFileView(original, 'the manifest dir is missing');

    expect(summary(held)).to.deep.equal(['0:alpha@10+retained', '1:beta@20+retained']);
    expect(held.parsed).to.equal(original.parsed);
  });
});
