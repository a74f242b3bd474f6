import { type TSchema } from '@sinclair/typebox';
import { Errors, ValueErrorType, type ValueError } from '@sinclair/typebox/errors';

import { ManifestError } from '../errors.js';
import { describeValue, fieldPathOf, pointerSegments } from './field-path.js';
import { structureProblem } from './limits.js';
import { enumValues } from './schema-kit.js';
import { closestName } from './suggest.js';

/** Where a checked value lives, for the errors about it. */
export interface ValidationTarget {
  file: string;
  documentIndex?: number;
  /** Field path of `value` inside its document, prefixed to every reported path. */
  pathPrefix?: string;
  /** Error code; BPFD_E_MANIFEST unless given. */
  code?: string;
}

/** More than this many problems in one value are summarised, so output stays readable. */
export const MAX_REPORTED_PROBLEMS = 25;

interface Problem {
  segments: string[];
  message: string;
  /** For an unknown field: the declared field it probably meant. */
  suggestion?: string;
}

/**
 * Check `value` against `schema` and describe every problem in one line each: unknown fields
 * (with a "did you mean" for near misses), missing and mistyped fields, and values out of
 * range. Values beyond the structural limits get one error and are not checked further.
 */
export function validateAgainst(
  schema: TSchema,
  value: unknown,
  where: ValidationTarget,
): ManifestError[] {
  const structural = structureProblem(value);
  if (structural !== undefined) return [errorAt(where, value, [], structural)];

  const problems = withoutEchoes(
    [...Errors(schema, value)].map(describeError).filter((p) => p !== undefined),
  );
  const reported = problems.slice(0, MAX_REPORTED_PROBLEMS);
  const errors = reported.map((p) => errorAt(where, value, p.segments, p.message));

  const hidden = problems.length - reported.length;
  if (hidden > 0) {
    errors.push(errorAt(where, value, [], `${hidden} more problems not shown; fix these first`));
  }
  return errors;
}

function errorAt(where: ValidationTarget, root: unknown, segments: string[], message: string) {
  const location = {
    file: where.file,
    documentIndex: where.documentIndex,
    fieldPath: fieldPathOf(root, segments, where.pathPrefix),
  };
  return new ManifestError(message, location, where.code);
}

/**
 * Drop what repeats another problem: the same line twice at one path (a name both too long and
 * malformed), and the "missing" error for a field that an unknown one was a misspelling of.
 */
function withoutEchoes(problems: Problem[]): Problem[] {
  const misspelt = new Set(
    problems
      .filter((p) => p.suggestion !== undefined)
      .map((p) => [...p.segments.slice(0, -1), p.suggestion].join('/')),
  );
  const seen = new Set<string>();

  return problems.filter((problem) => {
    const path = problem.segments.join('/');
    const key = `${path}\n${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return !(problem.message === MISSING && misspelt.has(path));
  });
}

const MISSING = 'required field is missing';

function describeError(error: ValueError): Problem | undefined {
  const segments = pointerSegments(error.path);
  const custom = customMessage(error.schema);

  // YAML has no undefined: such an error is about a missing field, reported once already.
  if (error.value === undefined && error.type !== ValueErrorType.ObjectRequiredProperty) {
    return undefined;
  }

  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return { segments, message: MISSING };
    case ValueErrorType.ObjectAdditionalProperties:
      return unknownField(error, segments);
    case ValueErrorType.ObjectMinProperties:
    case ValueErrorType.ObjectMaxProperties:
      return { segments, message: custom ?? propertyCountMessage(error) };
    case ValueErrorType.Literal:
      return { segments, message: got(custom ?? literalMessage(error.schema), error.value) };
    case ValueErrorType.StringPattern:
      return { segments, message: patternMessage(error, custom) };
    case ValueErrorType.StringFormat:
      return { segments, message: custom ?? `must be in "${error.schema['format']}" format` };
    case ValueErrorType.StringMinLength:
      return { segments, message: custom ?? minLengthMessage(error.schema) };
    case ValueErrorType.StringMaxLength:
      return { segments, message: custom ?? maxLengthMessage(error) };
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return {
        segments,
        message: `must be at least ${error.schema['minimum']}, got ${error.value}`,
      };
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return {
        segments,
        message: `must be at most ${error.schema['maximum']}, got ${error.value}`,
      };
    case ValueErrorType.ArrayMaxItems:
      return { segments, message: maxItemsMessage(error) };
    case ValueErrorType.ArrayMinItems:
      return { segments, message: `needs at least ${error.schema['minItems']} items` };
    case ValueErrorType.Union:
      return { segments, message: got(`must be ${unionExpectation(error.schema)}`, error.value) };
    default:
      return typeMessage(error, segments);
  }
}

function customMessage(schema: TSchema): string | undefined {
  const message: unknown = schema['errorMessage'];
  return typeof message === 'string' ? message : undefined;
}

function unknownField(error: ValueError, segments: string[]): Problem {
  // A map (labels, caFiles) has no field names, only a rule for its keys.
  if (error.schema['patternProperties'] !== undefined) {
    return { segments, message: customMessage(error.schema) ?? 'key is not allowed here' };
  }

  const field = segments[segments.length - 1] ?? '';
  const known = Object.keys(error.schema['properties'] ?? {});
  const suggestion = closestName(field, known);

  if (suggestion !== undefined) {
    return { segments, suggestion, message: `unknown field; did you mean "${suggestion}"?` };
  }
  const allowed = known.length > 0 ? `; allowed fields here: ${known.join(', ')}` : '';
  return { segments, message: `unknown field${allowed}` };
}

function propertyCountMessage(error: ValueError): string {
  const { minProperties, maxProperties } = error.schema;
  if (error.type === ValueErrorType.ObjectMinProperties) {
    return `needs at least ${minProperties} field(s)`;
  }
  return `takes at most ${maxProperties} field(s)`;
}

function literalMessage(schema: TSchema): string {
  return `must be ${JSON.stringify(schema['const'])}`;
}

function patternMessage(error: ValueError, custom: string | undefined): string {
  const allowed = enumValues(error.schema);
  if (custom !== undefined || allowed === undefined) {
    return got(custom ?? `must match the pattern ${error.schema['pattern']}`, error.value);
  }

  const written = String(error.value);
  const suggestion = closestName(written, allowed);
  const hint = suggestion !== undefined ? `; did you mean "${suggestion}"?` : '';
  return `must be one of ${allowed.join(', ')}; got ${describeValue(error.value)}${hint}`;
}

function minLengthMessage(schema: TSchema): string {
  const minLength = Number(schema['minLength']);
  return minLength === 1 ? 'must not be empty' : `must be at least ${minLength} characters long`;
}

function maxLengthMessage(error: ValueError): string {
  const length = String(error.value).length;
  return `must be at most ${error.schema['maxLength']} characters long, got ${length}`;
}

function maxItemsMessage(error: ValueError): string {
  const count = Array.isArray(error.value) ? error.value.length : 0;
  return `has ${count} items; at most ${error.schema['maxItems']} are allowed`;
}

/** How each JSON Schema type reads in a message. */
const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'null',
};

function typeMessage(error: ValueError, segments: string[]): Problem {
  const expected = TYPE_NAMES[String(error.schema['type'])];
  if (expected === undefined) return { segments, message: error.message };

  // YAML reads `true` and `5` as non-strings; label values like "true" need quotes.
  const scalar = typeof error.value === 'number' || typeof error.value === 'boolean';
  const hint = error.schema['type'] === 'string' && scalar ? ` (quote it: "${error.value}")` : '';
  return { segments, message: got(`must be ${expected}`, error.value) + hint };
}

function unionExpectation(schema: TSchema): string {
  const variants: TSchema[] = Array.isArray(schema['anyOf']) ? schema['anyOf'] : [];
  const names = variants.map((variant) =>
    'const' in variant
      ? JSON.stringify(variant['const'])
      : (TYPE_NAMES[String(variant['type'])] ?? 'another type'),
  );
  return names.join(' or ');
}

function got(message: string, value: unknown): string {
  return `${message}; got ${describeValue(value)}`;
}
