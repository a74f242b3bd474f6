/** Content digests (`sha256:<hex>`) as the OCI spec defines them; sha256 and sha512 only. */
import crypto from 'node:crypto';
import fs from 'node:fs';

const DIGEST = /^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

export type DigestAlgorithm = 'sha256' | 'sha512';

export function isDigest(text: string): boolean {
  return DIGEST.test(text);
}

/** The algorithm and hex of a digest already checked with `isDigest`. */
export function splitDigest(digest: string): { algorithm: DigestAlgorithm; hex: string } {
  if (!isDigest(digest)) throw new Error(`not a digest: ${JSON.stringify(digest)}`);
  const [algorithm, hex] = digest.split(':');
  return { algorithm: algorithm as DigestAlgorithm, hex };
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${crypto.createHash(algorithm).update(bytes).digest('hex')}`;
}

/** A digest computed while bytes stream past, e.g. during a download. */
export class DigestHasher {
  private readonly hash: crypto.Hash;
  readonly algorithm: DigestAlgorithm;
  bytes = 0;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = crypto.createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** The digest of a file's content, read as a stream. */
export async function digestOfFile(
  file: string,
  algorithm: DigestAlgorithm = 'sha256',
): Promise<string> {
  const hasher = new DigestHasher(algorithm);
  for await (const chunk of fs.createReadStream(file)) hasher.update(chunk as Buffer);
  return hasher.digest();
}
