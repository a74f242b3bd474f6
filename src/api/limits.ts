/**
 * Bounds on what the daemon reads, so a hostile or broken file costs little: YAML aliases let a
 * few hundred bytes stand for billions of nodes, and js-yaml shares them by reference, so any
 * walk over the parsed value must count through them.
 */

export const MAX_MANIFEST_BYTES = 1024 * 1024;
export const MAX_DOCUMENTS_PER_FILE = 10_000;
export const MAX_DOCUMENT_DEPTH = 64;
export const MAX_DOCUMENT_NODES = 100_000;

/** Why a file of `bytes` bytes is refused. */
export function oversizeReason(bytes: number): string {
  return `is ${bytes} bytes; files larger than ${MAX_MANIFEST_BYTES} bytes (1 MiB) are refused`;
}

/** Why a value is refused, or undefined when it is within bounds. */
export function structureProblem(value: unknown): string | undefined {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  // Counted when discovered, so one huge list costs no more than the limit.
  let discovered = 1;

  while (pending.length > 0) {
    const node = pending.pop()!;
    if (!isCollection(node.value)) continue;
    if (node.depth > MAX_DOCUMENT_DEPTH) {
      return `too deeply nested: more than ${MAX_DOCUMENT_DEPTH} levels of mappings and lists`;
    }

    const children = Array.isArray(node.value) ? node.value : Object.values(node.value);
    discovered += children.length;
    if (discovered > MAX_DOCUMENT_NODES) {
      return (
        `too large: more than ${MAX_DOCUMENT_NODES} values once YAML aliases are expanded; ` +
        'split it up or stop repeating anchors'
      );
    }
    for (const child of children) pending.push({ value: child, depth: node.depth + 1 });
  }
  return undefined;
}

function isCollection(value: unknown): value is object {
  return value !== null && typeof value === 'object';
}
