/**
 * Property-based tests of manifest parsing: whatever text arrives, `parseManifestText` answers
 * and never throws, and every problem it reports is a ManifestError that names the file, the
 * document and the field.
 *
 * Runs are random but reproducible: set FC_SEED to the seed a failure prints to replay it, and
 * FC_RUNS to change how many cases each property tries.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';
import fc from 'fast-check';
import yaml from 'js-yaml';

import {
  parseManifestFile,
  parseManifestText,
  PROGRAM_KINDS,
  type ParsedDocument,
  type ParsedFile,
} from '../../../src/api/index.js';
import { ManifestError } from '../../../src/errors.js';
import { BPFPROGRAM_SAMPLE } from './samples.js';

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : randomSeed();
const RUNS_OVERRIDE = process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : undefined;

const FILE = 'fuzz/programs.yaml';
const PROGRAM_KIND_NAMES: ReadonlySet<string> = new Set(PROGRAM_KINDS);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Mapping = { [key: string]: Json };
type Segment = string | number;

function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}

/** fc.assert with the shared seed; a failure says how to replay it. */
function checkProperty(property: fc.IRawProperty<unknown>, numRuns: number): void {
  try {
    fc.assert(property, { seed: SEED, numRuns: RUNS_OVERRIDE ?? numRuns });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}\nReplay with FC_SEED=${SEED}`, { cause: error });
  }
}

// --- Valid base documents, one per kind, using every spec field the API defines -------------

const XDP_BASE: Mapping = {
  apiVersion: 'bpfd.io/v1alpha1',
  kind: 'XdpProgram',
  metadata: { name: 'xdp-fuzz', labels: { 'app.kubernetes.io/name': 'fuzz' } },
  spec: {
    sectionname: 'stats',
    nodeselector: {
      matchLabels: { role: 'edge' },
      matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }],
    },
    interfaceselector: { interface: 'eth0' },
    priority: 10,
    proceedon: ['pass', 'dispatcher_return'],
    globaldata: { verdict: 'AgAAAA==' },
    bytecode: {
      image: {
        url: 'quay.io/bpfd-bytecode/xdp_pass:latest',
        imagepullpolicy: 'IfNotPresent',
        imagepullsecret: { name: 'pull-secret', namespace: 'default' },
      },
    },
  },
};

const TC_BASE: Mapping = {
  apiVersion: 'bpfd.io/v1alpha1',
  kind: 'TcProgram',
  metadata: { name: 'tc-fuzz', annotations: { note: 'fuzz' } },
  spec: {
    sectionname: 'classifier',
    nodeselector: { matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] },
    interfaceselector: { primarynodeinterface: true },
    priority: 1000,
    direction: 'INGRESS',
    proceedon: ['pipe', 'dispatcher_return'],
    bytecode: { path: '/usr/lib/bpfd/tc_pass.o' },
  },
};

const TRACEPOINT_BASE: Mapping = {
  apiVersion: 'bpfd.io/v1alpha1',
  kind: 'TracepointProgram',
  metadata: { name: 'tracepoint-fuzz', generation: 3 },
  spec: {
    sectionname: 'hello',
    nodeselector: {},
    name: 'syscalls/sys_enter_openat',
    globaldata: { match_tgid: 'AQAAAA==' },
    bytecode: { path: 'objects/tracepoint.o' },
  },
};

const BPFPROGRAM_BASE = yaml.load(BPFPROGRAM_SAMPLE) as Mapping;

const BASES: readonly Mapping[] = [XDP_BASE, TC_BASE, TRACEPOINT_BASE, BPFPROGRAM_BASE];

/** A valid document of another name, to surround a broken one in the same file. */
function neighbour(name: string): Mapping {
  const copy = clone(TC_BASE) as { metadata: { name: string } };
  copy.metadata.name = name;
  return copy as unknown as Mapping;
}

// --- Building blocks of the arbitraries ------------------------------------------------------

/** Keys that trip up naive code: prototype names, YAML's merge key, path syntax, near misses. */
// prettier-ignore
const TRICKY_KEYS = [
  '__proto__', 'constructor', 'toString', 'hasOwnProperty',
  '<<', '', ' ', 'a/b', 'a~1b', 'a.b', '0', '[0]', 'é', 'key\nwith break',
  'interfaceSelector', 'section_name', 'prority', 'x'.repeat(400),
];
const trickyKey = fc.constantFrom(...TRICKY_KEYS);

/** Scalars at the edges of our schemas (ranges, enums, base64) and of YAML's own syntax. */
// prettier-ignore
const TRICKY_SCALARS: Json[] = [
  null, true, false, 0, -0, -1, 1000, 1001, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 1e308, 0.5,
  '', ' ', 'true', 'null', '~', '0x1F', '.nan', '1e3',
  'INGRESS', 'egress', 'pass', 'pipe', 'In', 'Exists', 'xdp/stats', 'syscalls/',
  '====', 'AAAA', 'AA=A',
  '*alias', '&anchor', '!!binary', '---', '...', '\n', '# comment', '\u0000', 'a'.repeat(300),
];

/** Tricky scalars, plus plain random ones. */
const trickyScalar = fc.oneof(
  fc.constantFrom(...TRICKY_SCALARS),
  fc.double().map((value) => value as Json),
  fc.integer().map((value) => value as Json),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

/** An object with `entries` as own properties, even for a key named `__proto__`. */
function mappingOf(entries: Array<[string, Json]>): Mapping {
  const mapping: Mapping = {};
  for (const [key, value] of entries) setOwn(mapping, key, value);
  return mapping;
}

const anyKey = fc.oneof(trickyKey, fc.string({ maxLength: 12 }));

const jsonishValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: trickyScalar },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
  // Many keys or items at once, so reports with more than 25 problems are covered too.
  {
    weight: 1,
    arbitrary: fc
      .array(fc.tuple(anyKey, trickyScalar), { maxLength: 40 })
      .map((entries) => mappingOf(entries) as Json),
  },
  { weight: 1, arbitrary: fc.array(trickyScalar, { maxLength: 40 }) },
);

function setOwn(mapping: Mapping, key: string, value: Json): void {
  Object.defineProperty(mapping, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function clone(value: Json | Mapping): Json {
  return JSON.parse(JSON.stringify(value)) as Json;
}

/** Every path to a value inside `value`, the root excluded. */
function pathsIn(value: Json, prefix: Segment[] = []): Segment[][] {
  const children: Array<[Segment, Json]> = Array.isArray(value)
    ? value.map((child, position): [Segment, Json] => [position, child])
    : value !== null && typeof value === 'object'
      ? Object.entries(value)
      : [];
  return children.flatMap(([segment, child]) => {
    const path = [...prefix, segment];
    return [path, ...pathsIn(child, path)];
  });
}

/** Every mapping inside `value`, the root included. */
function mappingPathsIn(value: Json): Segment[][] {
  const all = [[], ...pathsIn(value)];
  return all.filter((path) => {
    const target = valueAt(value, path);
    return target !== null && typeof target === 'object' && !Array.isArray(target);
  });
}

function valueAt(root: Json, path: Segment[]): Json {
  let current = root;
  for (const segment of path) current = (current as Record<Segment, Json>)[segment]!;
  return current;
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** The field path as ManifestError prints it (`spec.proceedon[1]`, `labels["a.b/c"]`). */
function printedPath(path: Segment[]): string {
  return path
    .map((segment, position) => {
      if (typeof segment === 'number') return `[${segment}]`;
      if (!PLAIN_KEY.test(segment)) return `[${JSON.stringify(segment)}]`;
      return position === 0 ? segment : `.${segment}`;
    })
    .join('');
}

// --- Mutations of one field of a valid document ----------------------------------------------

type FieldMutation =
  | { type: 'replace'; path: Segment[]; value: Json }
  | { type: 'remove'; path: Segment[] }
  | { type: 'addKey'; path: Segment[]; key: string; value: Json };

function fieldMutation(base: Mapping): fc.Arbitrary<FieldMutation> {
  const paths = pathsIn(base as Json);
  const mappings = mappingPathsIn(base as Json);
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        type: fc.constant('replace' as const),
        path: fc.constantFrom(...paths),
        value: jsonishValue,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constant('remove' as const),
        path: fc.constantFrom(...paths),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constant('addKey' as const),
        path: fc.constantFrom(...mappings),
        key: anyKey,
        value: jsonishValue,
      }),
    },
  );
}

function applyFieldMutation(base: Mapping, mutation: FieldMutation): Json {
  const document = clone(base);
  if (mutation.type === 'addKey') {
    const target = valueAt(document, mutation.path) as Mapping;
    setOwn(target, mutation.key, mutation.value);
    return document;
  }

  const parent = valueAt(document, mutation.path.slice(0, -1)) as Record<Segment, Json>;
  const last = mutation.path[mutation.path.length - 1]!;
  if (mutation.type === 'replace') {
    if (typeof last === 'string') setOwn(parent as Mapping, last, mutation.value);
    else parent[last] = mutation.value;
  } else if (Array.isArray(parent)) {
    parent.splice(last as number, 1);
  } else {
    delete parent[last];
  }
  return document;
}

/**
 * The path every error about `mutation` must lie on (at it, above it or below it). For an added
 * key that is the mapping it was added to, whose own rules (field count) may object.
 */
function mutatedPath(mutation: FieldMutation): string {
  return printedPath(mutation.path);
}

function isOnPath(fieldPath: string, mutated: string): boolean {
  if (mutated === '' || fieldPath === mutated) return true;
  const below = (long: string, short: string) =>
    long.startsWith(`${short}.`) || long.startsWith(`${short}[`);
  return below(fieldPath, mutated) || below(mutated, fieldPath);
}

/**
 * Rules that tie one field to a sibling: a label selector requirement's operator decides
 * whether its `values` may be empty. Such an error may sit next to the mutated field.
 */
function isSiblingRule(fieldPath: string, mutated: string): boolean {
  const requirement = /^spec\.nodeselector\.matchExpressions\[\d+\]/;
  const owner = requirement.exec(fieldPath)?.[0];
  return owner !== undefined && mutated.startsWith(owner);
}

// --- What every result must look like --------------------------------------------------------

/** Problems about a whole document, which name no single field. */
const WHOLE_DOCUMENT_PROBLEMS = [
  /^must be a mapping with apiVersion, kind, metadata and spec; got .+$/s,
  /^too deeply nested: more than \d+ levels/,
  /^too large: more than \d+ values once YAML aliases are expanded/,
  /^\d+ more problems not shown; fix these first$/,
];

/** Problems about a whole file, which concern no single document. */
const WHOLE_FILE_PROBLEMS = [
  /^is not valid YAML at line \d+, column \d+: \S/,
  /^is not text \(NUL byte on line \d+\); expected a UTF-8 YAML file$/,
  /^is \d+ bytes; files larger than \d+ bytes \(1 MiB\) are refused$/,
  /^holds \d+ documents; split it/,
  /^cannot be parsed as YAML: \S/,
  // Only when reading a file.
  /^is not UTF-8 text; expected a YAML file$/,
];

/** The message without the quoted user text in it, so only our own words are inspected. */
function ownWords(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"/g, '"…"');
}

function expectReadableDetail(detail: string, context: string): void {
  expect(detail.trim(), `${context}: empty message`).to.not.equal('');
  expect(ownWords(detail), context).to.not.match(/\bundefined\b|\[object Object\]/);
}

function expectClearDocumentError(error: unknown, file: string, index: number): void {
  expect(error).to.be.instanceOf(ManifestError);
  const problem = error as ManifestError;
  const context = `error ${JSON.stringify(problem.message)}`;

  expect(problem.code, context).to.equal('BPFD_E_MANIFEST');
  expect(problem.file, context).to.equal(file);
  expect(problem.documentIndex, context).to.equal(index);

  const location = `${file}: document ${index}: ${problem.fieldPath ? `${problem.fieldPath}: ` : ''}`;
  expect(problem.message.startsWith(location), `${context} should start with ${location}`).to.equal(
    true,
  );
  const detail = problem.message.slice(location.length);
  expectReadableDetail(detail, context);

  if (problem.fieldPath === undefined) {
    const wholeDocument = WHOLE_DOCUMENT_PROBLEMS.some((pattern) => pattern.test(detail));
    expect(wholeDocument, `${context} names no field path`).to.equal(true);
  }
}

function expectClearFileError(error: ManifestError, file: string): void {
  expect(error).to.be.instanceOf(ManifestError);
  expect(error.file).to.equal(file);
  expect(error.documentIndex).to.equal(undefined);
  expect(error.fieldPath).to.equal(undefined);
  expect(error.message.startsWith(`${file}: `)).to.equal(true);

  const detail = error.message.slice(file.length + 2);
  expectReadableDetail(detail, error.message);
  const known = WHOLE_FILE_PROBLEMS.some((pattern) => pattern.test(detail));
  expect(known, `unexpected kind of file error: ${error.message}`).to.equal(true);
}

function expectWellFormedDocument(document: ParsedDocument, file: string): void {
  expect(document.file).to.equal(file);
  expect(Number.isSafeInteger(document.index) && document.index >= 0).to.equal(true);
  for (const error of document.errors) expectClearDocumentError(error, file, document.index);

  // An object is handed on exactly when a program document is valid, and it is that document.
  const isValidProgram =
    document.errors.length === 0 &&
    document.kind !== undefined &&
    PROGRAM_KIND_NAMES.has(document.kind);
  expect(document.object !== undefined, `object of ${document.kind}/${document.name}`).to.equal(
    isValidProgram,
  );
  if (document.object) {
    expect(document.object.kind).to.equal(document.kind);
    expect(document.object.metadata.name).to.equal(document.name);
  }
}

/** Whatever the text, the result has this shape. */
function expectWellFormedResult(parsed: ParsedFile, file: string): void {
  expect(parsed.file).to.equal(file);
  if (parsed.fileError) {
    expectClearFileError(parsed.fileError, file);
    expect(parsed.documents).to.deep.equal([]);
    return;
  }

  const indexes = parsed.documents.map((document) => document.index);
  expect(indexes, 'document indexes increase').to.deep.equal([...indexes].sort((a, b) => a - b));
  expect(new Set(indexes).size).to.equal(indexes.length);
  for (const document of parsed.documents) expectWellFormedDocument(document, file);
}

/** Messages of a result, to compare two parses of the same text. */
function messagesOf(parsed: ParsedFile): string[] {
  const fileError = parsed.fileError ? [parsed.fileError.message] : [];
  return [...fileError, ...parsed.documents.flatMap((d) => d.errors.map((e) => e.message))];
}

function parseNeverThrowing(text: string, file = FILE): ParsedFile {
  let parsed: ParsedFile | undefined;
  expect(() => (parsed = parseManifestText(file, text))).to.not.throw();
  return parsed!;
}

// --- Mutations of valid YAML text ------------------------------------------------------------

/** Pieces of YAML syntax, to splice into valid text where they break it in interesting ways. */
// prettier-ignore
const YAML_TOKENS = [
  ':', ': ', '- ', '-', '---\n', '...\n', '? ', '|', '>-', '#', '"', "'", ',',
  '{', '}', '[', ']', '&a ', '*a', '*missing', '<<: *a\n', '<<: [1, 2]\n',
  '!!binary ', '!!str ', '!!int ', '!!map ', '!!seq ', '!!timestamp ', '!custom ',
  '%YAML 1.2\n', '%TAG ! tag:example.com,2000:\n',
  '\t', '\n', '  ', '\r\n', '\r', '\ufeff', '\u2028', '\u0085', '\u0000', '\u0007',
  'null', '~', '.inf', '0x10', '1e9999', '2023-01-01', 'yes', '\\', '@', '`',
];

type TextEdit =
  | { type: 'insert'; at: number; text: string }
  | { type: 'delete'; at: number; length: number }
  | { type: 'duplicateLine'; line: number }
  | { type: 'swapLines'; line: number; other: number }
  | { type: 'indent'; line: number; by: number }
  | { type: 'truncate'; at: number };

const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('insert' as const),
      at: fc.nat(),
      text: fc.oneof(fc.constantFrom(...YAML_TOKENS), fc.string({ maxLength: 8 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('delete' as const),
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 24 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant('duplicateLine' as const), line: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('swapLines' as const),
      line: fc.nat(),
      other: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('indent' as const),
      line: fc.nat(),
      by: fc.integer({ min: -4, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('truncate' as const), at: fc.nat() }) },
);

function applyTextEdit(text: string, edit: TextEdit): string {
  const lines = text.split('\n');
  const lineAt = (n: number) => n % lines.length;
  switch (edit.type) {
    case 'insert': {
      const at = edit.at % (text.length + 1);
      return text.slice(0, at) + edit.text + text.slice(at);
    }
    case 'delete': {
      const at = edit.at % (text.length + 1);
      return text.slice(0, at) + text.slice(at + edit.length);
    }
    case 'truncate':
      return text.slice(0, edit.at % (text.length + 1));
    case 'duplicateLine': {
      const line = lineAt(edit.line);
      lines.splice(line, 0, lines[line]!);
      return lines.join('\n');
    }
    case 'swapLines': {
      const [a, b] = [lineAt(edit.line), lineAt(edit.other)];
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return lines.join('\n');
    }
    case 'indent': {
      const line = lineAt(edit.line);
      const current = lines[line]!;
      lines[line] = edit.by >= 0 ? ' '.repeat(edit.by) + current : current.slice(-edit.by);
      return lines.join('\n');
    }
  }
}

const validText = fc
  .shuffledSubarray([...BASES], { minLength: 1 })
  .map((documents) => documents.map((document) => yaml.dump(document)).join('---\n'));

// --- The properties --------------------------------------------------------------------------

describe('parseManifestText under fuzzing', () => {
  it('accepts every base document as valid, so mutations start from a clean state', () => {
    for (const base of BASES) {
      const parsed = parseManifestText(FILE, yaml.dump(base));
      expect(messagesOf(parsed)).to.deep.equal([]);
    }
  });

  it('reports any value at any field of a valid document on that field, in that document only', () => {
    const scenario = fc
      .constantFrom(...BASES)
      .chain((base) =>
        fc.record({ base: fc.constant(base), mutation: fieldMutation(base), position: fc.nat(2) }),
      );

    checkProperty(
      fc.property(scenario, ({ base, mutation, position }) => {
        const documents: Json[] = [neighbour('before-a'), neighbour('after-b')];
        documents.splice(position, 0, applyFieldMutation(base, mutation));
        const text = documents.map((document) => yaml.dump(document)).join('---\n');

        const parsed = parseNeverThrowing(text);

        expect(parsed.fileError, parsed.fileError?.message).to.equal(undefined);
        expectWellFormedResult(parsed, FILE);
        const mutated = mutatedPath(mutation);
        for (const document of parsed.documents) {
          if (document.index !== position) {
            expect(messagesOf({ file: FILE, documents: [document] })).to.deep.equal([]);
            continue;
          }
          for (const error of document.errors) {
            // A new kind means another schema: every field may then be wrong.
            if (mutated === 'kind' || error.fieldPath === undefined) continue;
            const related =
              isOnPath(error.fieldPath, mutated) || isSiblingRule(error.fieldPath, mutated);
            expect(related, `${error.message} (mutated ${mutated})`).to.equal(true);
          }
        }
      }),
      1000,
    );
  });

  it('answers for randomly edited YAML text, never throwing, the same way every time', () => {
    const scenario = fc.record({
      text: validText,
      edits: fc.array(textEdit, { minLength: 1, maxLength: 8 }),
    });

    checkProperty(
      fc.property(scenario, ({ text, edits }) => {
        const edited = edits.reduce(applyTextEdit, text);

        const parsed = parseNeverThrowing(edited);

        expectWellFormedResult(parsed, FILE);
        expect(messagesOf(parseNeverThrowing(edited))).to.deep.equal(messagesOf(parsed));
      }),
      1000,
    );
  });

  it('answers for soups of YAML tokens', () => {
    const soup = fc
      .array(fc.oneof(fc.constantFrom(...YAML_TOKENS), fc.string({ maxLength: 6 })), {
        maxLength: 60,
      })
      .map((pieces) => pieces.join(''));

    checkProperty(
      fc.property(soup, (text) => {
        expectWellFormedResult(parseNeverThrowing(text), FILE);
      }),
      1000,
    );
  });

  it('answers for random bytes read as UTF-8 or Latin-1 text', () => {
    checkProperty(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const buffer = Buffer.from(bytes);
        for (const text of [buffer.toString('utf8'), buffer.toString('latin1')]) {
          expectWellFormedResult(parseNeverThrowing(text), FILE);
        }
      }),
      500,
    );
  });

  it('refuses alias expansions beyond the limit on the document that holds them', () => {
    const bomb = fc.record({
      levels: fc.integer({ min: 1, max: 14 }),
      fanOut: fc.integer({ min: 1, max: 12 }),
      position: fc.nat(1),
    });

    checkProperty(
      fc.property(bomb, ({ levels, fanOut, position }) => {
        const lines = [`a0: &a0 [${Array(fanOut).fill('lol').join(', ')}]`];
        for (let level = 1; level < levels; level++) {
          lines.push(
            `a${level}: &a${level} [${Array(fanOut)
              .fill(`*a${level - 1}`)
              .join(', ')}]`,
          );
        }
        const bombed = `${yaml.dump(XDP_BASE)}bomb:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
        const documents = [yaml.dump(neighbour('calm'))];
        documents.splice(position, 0, bombed);

        const parsed = parseNeverThrowing(documents.join('---\n'));

        expectWellFormedResult(parsed, FILE);
        const [document] = parsed.documents.filter((d) => d.index === position);
        expect(document!.errors.length).to.be.greaterThan(0);
        const refused = document!.errors.some((e) => /more than 100000 values/.test(e.message));
        if (fanOut ** levels > 200_000)
          expect(refused, 'a large expansion is refused').to.equal(true);
        if (fanOut ** levels * levels < 50_000)
          expect(refused, 'a small one is not').to.equal(false);
        const calm = parsed.documents.find((d) => d.index !== position);
        expect(calm?.errors).to.deep.equal([]);
      }),
      300,
    );
  });

  it('refuses nesting past 64 levels, however deep, and accepts shallower nesting', () => {
    const nesting = fc.record({
      depth: fc.integer({ min: 1, max: 20_000 }),
      style: fc.constantFrom('flow list', 'flow mapping', 'block list'),
    });

    checkProperty(
      fc.property(nesting, ({ depth, style }) => {
        const levels = style === 'block list' ? Math.min(depth, 300) : depth;
        const text = `${yaml.dump(XDP_BASE)}extra:${nestedValue(style, levels)}\n`;

        const parsed = parseNeverThrowing(text);

        expectWellFormedResult(parsed, FILE);
        // The document is the first level, `extra` holds the second.
        const refused = messagesOf(parsed).some((message) =>
          /too deeply nested|nesting exceeded maxDepth/.test(message),
        );
        if (levels >= 64) expect(refused, `${levels} levels are refused`).to.equal(true);
        if (levels <= 62) expect(refused, `${levels} levels are accepted`).to.equal(false);
      }),
      300,
    );
  });
});

/** `levels` nested collections holding `x`, as the value of a key at the top level. */
function nestedValue(style: string, levels: number): string {
  if (style === 'flow list') return ` ${'['.repeat(levels)}x${']'.repeat(levels)}`;
  if (style === 'flow mapping') return ` ${'{a: '.repeat(levels)}x${'}'.repeat(levels)}`;
  const lines = Array.from({ length: levels }, (_, level) => `${'  '.repeat(level + 1)}-`);
  return `\n${lines.join('\n')} x`;
}

describe('parseManifestFile under fuzzing', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bpfd-fuzz-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers for files of random bytes with a file error or per-document errors', async () => {
    const file = join(dir, 'random.yaml');

    await fc
      .assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 8192 }), async (bytes) => {
          await writeFile(file, bytes);

          const parsed = await parseManifestFile(file);

          expectWellFormedResult(parsed, file);
        }),
        { seed: SEED, numRuns: RUNS_OVERRIDE ?? 300 },
      )
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(`${message}\nReplay with FC_SEED=${SEED}`, { cause: error });
      });
  });
});
