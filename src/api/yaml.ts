import yaml from 'js-yaml';

import { MAX_DOCUMENTS_PER_FILE, MAX_MANIFEST_BYTES, oversizeReason } from './limits.js';

/**
 * YAML as Kubernetes reads it: JSON-compatible scalars (timestamps stay strings, no `!!binary`
 * or custom tags) plus `<<` merge keys.
 */
const MERGE_KEY = new yaml.Type('tag:yaml.org,2002:merge', {
  kind: 'scalar',
  resolve: (data: unknown) => data === '<<',
});
const KUBERNETES_YAML = yaml.CORE_SCHEMA.extend({ implicit: [MERGE_KEY] });

export type YamlResult = { ok: true; documents: unknown[] } | { ok: false; reason: string };

/**
 * Every document of a YAML stream (null for an empty one), or why the text is not acceptable
 * YAML, in one sentence with the line number. Never throws.
 */
export function loadYamlDocuments(file: string, text: string): YamlResult {
  const refused = refusedText(text);
  if (refused !== undefined) return { ok: false, reason: refused };

  let documents: unknown[];
  try {
    documents = yaml.loadAll(text, undefined, loadOptions(file));
  } catch (error) {
    return { ok: false, reason: describeLoadError(error) };
  }

  // Each document costs a validation; a file of tiny documents must not cost minutes.
  const count = documents.filter((document) => document !== null).length;
  if (count > MAX_DOCUMENTS_PER_FILE) {
    const limit = MAX_DOCUMENTS_PER_FILE;
    return { ok: false, reason: `holds ${count} documents; split it (at most ${limit} a file)` };
  }
  return { ok: true, documents };
}

function refusedText(text: string): string | undefined {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_MANIFEST_BYTES) return oversizeReason(bytes);

  const nul = text.indexOf('\0');
  if (nul !== -1) {
    const line = lineOf(text, nul);
    return `is not text (NUL byte on line ${line}); expected a UTF-8 YAML file`;
  }
  return undefined;
}

function loadOptions(file: string): yaml.LoadOptions {
  // js-yaml 4.3 stops at 100 levels of nesting by itself (older versions overflow the stack,
  // which describeLoadError catches); our 64 levels are checked per document afterwards.
  return { filename: file, schema: KUBERNETES_YAML, json: false };
}

function describeLoadError(error: unknown): string {
  if (error instanceof yaml.YAMLException) {
    const mark = error.mark;
    const where = mark ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : '';
    return `is not valid YAML${where}: ${error.reason}`;
  }
  // A RangeError from the parser's recursion, or anything else it throws on hostile input.
  const detail = error instanceof Error ? error.message : String(error);
  return `cannot be parsed as YAML: ${detail}`;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}
