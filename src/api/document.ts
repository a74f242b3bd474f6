import { ManifestError } from '../errors.js';
import { describeValue } from './field-path.js';
import { structureProblem } from './limits.js';
import {
  API_VERSION,
  MANIFEST_KINDS,
  PROGRAM_KINDS,
  SCHEMAS_BY_KIND,
  type ManifestKind,
  type ProgramKind,
  type ProgramObject,
} from './schemas.js';
import { closestName } from './suggest.js';
import { validateAgainst } from './validate.js';

/** One YAML document of a manifest file, with what could be read of it. */
export interface ParsedDocument {
  file: string;
  index: number;
  /** Whatever could be read, even when the document is invalid. */
  kind?: string;
  name?: string;
  /** Set only for a valid XdpProgram, TcProgram or TracepointProgram. */
  object?: ProgramObject;
  /** Empty when the document is valid. */
  errors: ManifestError[];
}

type Mapping = Record<string, unknown>;
type ErrorAt = (message: string, fieldPath?: string) => ManifestError;

/** Validate one parsed YAML document and, when it is a valid program, normalise it. */
export function checkDocument(file: string, index: number, content: unknown): ParsedDocument {
  const parsed: ParsedDocument = { file, index, errors: [] };
  const at: ErrorAt = (message, fieldPath) =>
    new ManifestError(message, { file, documentIndex: index, fieldPath });

  if (!isMapping(content)) {
    const shape = describeValue(content);
    parsed.errors.push(
      at(`must be a mapping with apiVersion, kind, metadata and spec; got ${shape}`),
    );
    return parsed;
  }

  readIdentity(parsed, content);

  // Size first: nothing below may walk a document that expands to millions of values.
  const structural = structureProblem(content);
  if (structural !== undefined) {
    parsed.errors.push(at(structural));
    return parsed;
  }

  const kind = knownKind(content['kind']);
  if (kind === undefined) {
    parsed.errors.push(...identityErrors(content, at));
    return parsed;
  }

  parsed.errors.push(
    ...validateAgainst(SCHEMAS_BY_KIND[kind], content, { file, documentIndex: index }),
  );
  parsed.errors.push(...selectorErrors(content, at));
  if (parsed.errors.length === 0 && isProgramKind(kind)) {
    parsed.object = normalised(content) as ProgramObject;
  }
  return parsed;
}

function isMapping(value: unknown): value is Mapping {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function readIdentity(parsed: ParsedDocument, content: Mapping): void {
  if (typeof content['kind'] === 'string') parsed.kind = content['kind'];

  const metadata = content['metadata'];
  if (isMapping(metadata) && typeof metadata['name'] === 'string') parsed.name = metadata['name'];
}

function knownKind(kind: unknown): ManifestKind | undefined {
  return MANIFEST_KINDS.find((known) => known === kind);
}

function isProgramKind(kind: ManifestKind): kind is ProgramKind {
  return (PROGRAM_KINDS as readonly string[]).includes(kind);
}

/** Errors of a document whose kind is missing or not one of ours. */
function identityErrors(content: Mapping, at: ErrorAt): ManifestError[] {
  const errors: ManifestError[] = [];
  const apiVersion = content['apiVersion'];
  if (apiVersion === undefined || apiVersion === null) {
    errors.push(at(`required field is missing; use "${API_VERSION}"`, 'apiVersion'));
  } else if (apiVersion !== API_VERSION) {
    errors.push(at(`must be "${API_VERSION}"; got ${describeValue(apiVersion)}`, 'apiVersion'));
  }

  const kind = content['kind'];
  const expected = `expected one of ${MANIFEST_KINDS.join(', ')}`;
  if (kind === undefined || kind === null) {
    errors.push(at(`required field is missing; ${expected}`, 'kind'));
  } else if (typeof kind !== 'string') {
    errors.push(at(`must be a string; ${expected}`, 'kind'));
  } else {
    errors.push(at(unknownKindMessage(kind, expected), 'kind'));
  }
  return errors;
}

function unknownKindMessage(kind: string, expected: string): string {
  if (kind === 'List') return 'a List is not supported; write each object as its own document';

  const suggestion = closestName(kind, MANIFEST_KINDS);
  const hint = suggestion !== undefined ? `did you mean "${suggestion}"?` : expected;
  return `unknown kind ${JSON.stringify(kind)}; ${hint}`;
}

/**
 * metav1.LabelSelector rules the schema cannot express: In and NotIn need values, Exists and
 * DoesNotExist take none.
 */
function selectorErrors(content: Mapping, at: ErrorAt): ManifestError[] {
  const spec = content['spec'];
  const selector = isMapping(spec) ? spec['nodeselector'] : undefined;
  const expressions = isMapping(selector) ? selector['matchExpressions'] : undefined;
  if (!Array.isArray(expressions)) return [];

  const errors: ManifestError[] = [];
  expressions.forEach((expression: unknown, position) => {
    if (!isMapping(expression)) return;
    const problem = requirementProblem(expression['operator'], expression['values']);
    if (problem !== undefined) {
      errors.push(at(problem, `spec.nodeselector.matchExpressions[${position}].values`));
    }
  });
  return errors;
}

function requirementProblem(operator: unknown, values: unknown): string | undefined {
  const count = Array.isArray(values) ? values.length : 0;
  const needsValues = operator === 'In' || operator === 'NotIn';
  const takesNone = operator === 'Exists' || operator === 'DoesNotExist';

  if (needsValues && count === 0) return `operator ${operator} needs at least one value`;
  if (takesNone && count > 0) return `operator ${operator} takes no values; remove "values"`;
  return undefined;
}

/** The object as written, with `direction` lower-cased. */
function normalised(content: Mapping): Mapping {
  const spec = content['spec'] as Mapping;
  if (typeof spec['direction'] !== 'string') return content;
  return { ...content, spec: { ...spec, direction: spec['direction'].toLowerCase() } };
}
