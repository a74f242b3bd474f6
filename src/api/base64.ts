import { BpfdError } from '../errors.js';

const BASE64_ALPHABET = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Whether `text` is standard base64 with `=` padding, the way Kubernetes serialises `[]byte`
 * (Go's `base64.StdEncoding`). Node's own decoder accepts almost anything, so we check first.
 */
export function isBase64(text: string): boolean {
  if (text.length % 4 !== 0) return false;
  if (!BASE64_ALPHABET.test(text)) return false;

  // Padding may only close the last quantum.
  const firstPad = text.indexOf('=');
  return firstPad === -1 || firstPad >= text.length - 2;
}

/**
 * The bytes of each `globaldata` entry, keyed by global variable name. Values were checked by
 * the schema already; an invalid one here means the caller skipped validation.
 */
export function decodeGlobalData(
  globaldata: Record<string, string> | undefined,
): Map<string, Buffer> {
  const decoded = new Map<string, Buffer>();
  for (const [variable, encoded] of Object.entries(globaldata ?? {})) {
    if (!isBase64(encoded)) {
      throw new BpfdError(
        'BPFD_E_MANIFEST',
        `globaldata "${variable}" is not valid base64; encode the bytes with standard base64`,
      );
    }
    decoded.set(variable, Buffer.from(encoded, 'base64'));
  }
  return decoded;
}
