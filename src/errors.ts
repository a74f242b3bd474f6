/**
 * One base class for every error the daemon reports. `code` is stable so tools and tests can
 * match on it; the message tells the operator what to change.
 */
export class BpfdError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A manifest or config document that does not follow the schema. */
export class ManifestError extends BpfdError {
  readonly file: string;
  readonly documentIndex: number | undefined;
  readonly fieldPath: string | undefined;

  constructor(
    message: string,
    where: { file: string; documentIndex?: number; fieldPath?: string },
    code = 'BPFD_E_MANIFEST',
  ) {
    super(code, formatLocation(where) + message);
    this.file = where.file;
    this.documentIndex = where.documentIndex;
    this.fieldPath = where.fieldPath;
  }
}

/** A syscall or libbpf call that failed; keeps the errno and the object it concerned. */
export class KernelError extends BpfdError {
  readonly errno: number;
  readonly operation: string;

  constructor(operation: string, errno: number, message: string, code = 'BPFD_E_KERNEL') {
    super(code, message);
    this.errno = errno;
    this.operation = operation;
  }
}

function formatLocation(where: { file: string; documentIndex?: number; fieldPath?: string }) {
  const parts = [where.file];
  if (where.documentIndex !== undefined) parts.push(`document ${where.documentIndex}`);
  if (where.fieldPath) parts.push(where.fieldPath);
  return parts.join(': ') + ': ';
}
