import {
  FormatRegistry,
  Type,
  type ObjectOptions,
  type SchemaOptions,
  type TProperties,
  type TSchema,
  type TUnsafe,
} from '@sinclair/typebox';

import { isBase64 } from './base64.js';

/**
 * Building blocks shared by the manifest and config schemas. Schemas may carry an
 * `errorMessage` keyword: the sentence shown when the value fails a value check (pattern,
 * literal, min/max properties) instead of the generic one. It is removed from exported JSON
 * Schema.
 */

// `format: byte` is how the CRDs mark base64 `[]byte`; TypeBox checks formats it knows.
FormatRegistry.Set('byte', isBase64);

/** DNS-1123 subdomain, the rule for `metadata.name` and Kubernetes object names. */
export const DNS1123_SUBDOMAIN =
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

/** DNS-1123 label, the rule for namespace names. */
export const DNS1123_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/** An object that rejects fields it does not declare. */
export function strictObject<T extends TProperties>(properties: T, options: ObjectOptions = {}) {
  return Type.Object(properties, { ...options, additionalProperties: false });
}

/**
 * A string from a fixed set. Exported JSON Schema carries `enum` (editors offer the values);
 * the checker uses the equivalent anchored pattern, so the static type stays a union.
 */
export function stringEnum<const T extends readonly string[]>(
  values: T,
  options: SchemaOptions = {},
): TUnsafe<T[number]> {
  const alternatives = values.map(escapeRegExp).join('|');
  const schema = Type.String({ ...options, enum: [...values], pattern: `^(?:${alternatives})$` });
  return Type.Unsafe<T[number]>(schema);
}

/**
 * A mapping from any string key to `value`. TypeBox's default key pattern `^(.*)$` would let
 * keys with a line break skip the value check.
 */
export function stringKeyedMap<V extends TSchema>(value: V, options: ObjectOptions = {}) {
  return Type.Record(Type.String({ pattern: '^[\\s\\S]*$' }), value, options);
}

/** A string field that must not be empty. */
export function nonEmptyString(options: SchemaOptions = {}) {
  return Type.String({ minLength: 1, ...options });
}

/** The values allowed by a `stringEnum` schema, if `schema` is one. */
export function enumValues(schema: TSchema): readonly string[] | undefined {
  const values: unknown = schema['enum'];
  return Array.isArray(values) && values.every((v) => typeof v === 'string') ? values : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
