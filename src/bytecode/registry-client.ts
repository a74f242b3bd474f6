/**
 * A client of the OCI distribution API (v2) for one repository: manifests and blobs down,
 * blobs and manifests up, every piece checked against its digest. Connections, auth and
 * retries are the session's.
 */
import { randomUUID } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';

import { DigestHasher, digestOf, isDigest, splitDigest } from './digest.js';
import { ImageDigestError, ImageFormatError } from './errors.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, type Descriptor } from './manifest.js';
import { header, RegistrySession, type RegistryClientOptions } from './registry-session.js';
import { discardBody, saveBody } from './transport.js';

export type { RegistryClientOptions } from './registry-session.js';

export interface FetchedManifest {
  digest: string;
  bytes: Buffer;
  contentType?: string;
}

export class RegistryClient {
  private readonly reference: string;
  private readonly session: RegistrySession;

  constructor(options: RegistryClientOptions) {
    this.reference = options.reference;
    this.session = new RegistrySession(options);
  }

  /** Ends the kept-alive connections. */
  close(): void {
    this.session.close();
  }

  /** The digest a tag points to now (HEAD), or undefined if the registry does not say. */
  async manifestDigest(tagOrDigest: string): Promise<string | undefined> {
    const spec = { method: 'HEAD' as const, target: `manifests/${tagOrDigest}` };
    return this.session.exchange(spec, { accept: MANIFEST_ACCEPT }, async (response) => {
      await discardBody(response);
      const digest = header(response, 'docker-content-digest');
      return digest !== undefined && isDigest(digest) ? digest : undefined;
    });
  }

  /** A manifest, checked against `expectedDigest` and the registry's own digest header. */
  async fetchManifest(tagOrDigest: string, expectedDigest?: string): Promise<FetchedManifest> {
    const spec = { method: 'GET' as const, target: `manifests/${tagOrDigest}` };
    return this.session.exchange(spec, { accept: MANIFEST_ACCEPT }, async (response) => {
      const bytes = await this.session.readLimited(response, MAX_MANIFEST_BYTES, 'manifest');
      const announced = header(response, 'docker-content-digest');
      const digest = this.checkManifestDigest(bytes, expectedDigest, announced);
      return { digest, bytes, contentType: header(response, 'content-type') };
    });
  }

  /** A small blob (config) in memory, checked against its digest. */
  async fetchBlob(descriptor: Descriptor, maxBytes: number, what: string): Promise<Buffer> {
    this.checkDeclaredSize(descriptor, maxBytes, what);
    const spec = { method: 'GET' as const, target: `blobs/${descriptor.digest}` };
    return this.session.exchange(spec, {}, async (response) => {
      const bytes = await this.session.readLimited(response, maxBytes, what);
      const actual = digestOf(bytes, splitDigest(descriptor.digest).algorithm);
      if (actual !== descriptor.digest) this.digestMismatch(what, descriptor.digest, actual);
      return bytes;
    });
  }

  /** A blob streamed into `file` (a new file), checked against its digest and size limit. */
  async downloadBlob(
    descriptor: Descriptor,
    file: string,
    maxBytes: number,
    what: string,
  ): Promise<void> {
    this.checkDeclaredSize(descriptor, maxBytes, what);
    const spec = { method: 'GET' as const, target: `blobs/${descriptor.digest}` };
    const { algorithm } = splitDigest(descriptor.digest);
    await this.session.exchange(spec, {}, async (response) => {
      const target = `${file}.${randomUUID()}`;
      const actual = await this.session.limited(what, () =>
        saveBody(response, target, new DigestHasher(algorithm), maxBytes),
      );
      if (actual !== descriptor.digest) {
        await rm(target, { force: true });
        this.digestMismatch(what, descriptor.digest, actual);
      }
      await rename(target, file);
    });
  }

  async blobExists(digest: string): Promise<boolean> {
    const spec = { method: 'HEAD' as const, target: `blobs/${digest}` };
    return this.session.exchange(spec, { allowNotFound: true }, async (response) => {
      await discardBody(response);
      return response.status === 200;
    });
  }

  /** A monolithic upload: POST for an upload location, then PUT of the whole blob. */
  async uploadBlob(digest: string, content: Buffer): Promise<void> {
    const start = { method: 'POST' as const, target: 'blobs/uploads/' };
    const location = await this.session.exchange(start, { expect: [202] }, async (response) => {
      await discardBody(response);
      const value = header(response, 'location');
      if (value === undefined) {
        return this.session.protocolError('upload start answered without a Location');
      }
      return new URL(value, response.url);
    });

    location.searchParams.set('digest', digest);
    const headers = { 'content-type': 'application/octet-stream' };
    const finish = { method: 'PUT' as const, target: location, headers, body: content };
    await this.session.exchange(finish, { expect: [201] }, discardBody);
  }

  /** Stores a manifest under a tag or its digest; returns the digest. */
  async putManifest(tagOrDigest: string, bytes: Buffer, mediaType: string): Promise<string> {
    const headers = { 'content-type': mediaType };
    const spec = {
      method: 'PUT' as const,
      target: `manifests/${tagOrDigest}`,
      headers,
      body: bytes,
    };
    await this.session.exchange(spec, { expect: [201] }, discardBody);
    return digestOf(bytes);
  }

  private checkManifestDigest(bytes: Buffer, expected?: string, announced?: string): string {
    if (expected !== undefined) {
      const actual = digestOf(bytes, splitDigest(expected).algorithm);
      if (actual !== expected) this.digestMismatch('manifest', expected, actual);
      return expected;
    }
    const computed = digestOf(bytes);
    if (announced !== undefined && isDigest(announced)) {
      const actual = digestOf(bytes, splitDigest(announced).algorithm);
      if (actual !== announced) this.digestMismatch('manifest', announced, actual);
    }
    return computed;
  }

  private checkDeclaredSize(descriptor: Descriptor, maxBytes: number, what: string): void {
    if (descriptor.size <= maxBytes) return;
    throw new ImageFormatError(
      this.reference,
      `${what} ${descriptor.digest} is ${descriptor.size} bytes; the limit is ${maxBytes}`,
    );
  }

  private digestMismatch(what: string, expected: string, actual: string): never {
    throw new ImageDigestError(this.reference, what, expected, actual);
  }
}
