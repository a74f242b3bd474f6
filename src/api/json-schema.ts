import { type TSchema } from '@sinclair/typebox';

import { API_VERSION, SCHEMAS_BY_KIND } from './schemas.js';

/** Keywords that only our checker reads; exported schemas leave them out. */
const CHECKER_ONLY_KEYWORDS = new Set(['errorMessage']);

/**
 * Each kind's JSON Schema (draft-07), for `bpfd schema`, editors and kubeconform. Plain JSON:
 * TypeBox's symbol keys are gone. Two rules live only in the checker: label selector values
 * against their operator, and `globaldata` values being valid base64 (`format: byte`).
 */
export function jsonSchemas(): Record<string, object> {
  const schemas: Record<string, object> = {};
  for (const [kind, schema] of Object.entries(SCHEMAS_BY_KIND)) {
    schemas[kind] = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      title: `${API_VERSION} ${kind}`,
      ...(plainJson(schema) as object),
    };
  }
  return schemas;
}

function plainJson(schema: TSchema): unknown {
  return JSON.parse(
    JSON.stringify(schema, (key, value: unknown) =>
      CHECKER_ONLY_KEYWORDS.has(key) ? undefined : value,
    ),
  );
}
