/**
 * Field paths as operators write them: `spec.interfaceselector.primarynodeinterface`,
 * `spec.proceedon[2]`, `metadata.labels["app.kubernetes.io/name"]`.
 */

const PLAIN_FIELD = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;
const MAX_SHOWN_STRING = 60;
// Long enough for any Kubernetes label key (253-character prefix, "/", 63-character name).
const MAX_SHOWN_KEY = 320;

/** The keys of an RFC 6901 JSON pointer such as TypeBox reports (`/spec/proceedon/2`). */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * The field path of `segments` inside `root`, after `prefix`; undefined for the root itself
 * without a prefix. Walks `root` so list positions print as `[n]` and map keys as `.key`.
 */
export function fieldPathOf(
  root: unknown,
  segments: readonly string[],
  prefix?: string,
): string | undefined {
  let path = prefix ?? '';
  let current: unknown = root;

  for (const segment of segments) {
    path += formatSegment(path, segment, Array.isArray(current));
    current = childOf(current, segment);
  }
  return path === '' ? undefined : path;
}

/** A short description of a value for "got ..." in a message. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `the string ${quoteShort(value, MAX_SHOWN_STRING)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

function formatSegment(pathSoFar: string, segment: string, inList: boolean): string {
  if (inList) return `[${segment}]`;
  if (PLAIN_FIELD.test(segment) && segment.length <= MAX_SHOWN_KEY) {
    return pathSoFar === '' ? segment : `.${segment}`;
  }
  return `[${quoteShort(segment, MAX_SHOWN_KEY)}]`;
}

function childOf(value: unknown, key: string): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  return Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

function quoteShort(text: string, limit: number): string {
  return JSON.stringify(text.length > limit ? `${text.slice(0, limit)}...` : text);
}
