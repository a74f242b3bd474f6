/**
 * The node's content-addressed image cache, `<stateDir>/images`:
 *
 *   blobs/<algorithm>/<hex>        manifests, indexes and configs, named by their digest
 *   objects/<algorithm>/<hex>/     per image manifest: the object file and record.json
 *   tags/<sha256 of reference>.json  what a tag pointed to when it was last pulled
 *   tmp/                           downloads and unpacking in progress
 *
 * Every file is written under tmp/ and renamed into place, and checked against its digest
 * when read; a file that fails the check is removed and counts as absent.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

import { digestOf, digestOfFile, isDigest, splitDigest } from './digest.js';
import type { BytecodeLabels } from './manifest.js';

/** What the cache knows about one image manifest's object. */
export interface ObjectRecord {
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  /** File name of the object inside its cache folder. */
  objectFile: string;
  objectDigest: string;
  objectSize: number;
  labels: BytecodeLabels;
  /** The object's path inside the image layer. */
  pathInLayer: string;
}

export interface CachedObject {
  record: ObjectRecord;
  objectPath: string;
}

const RECORD_FILE = 'record.json';
const SAFE_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export class ImageCache {
  readonly root: string;
  /** Objects checked in this process: path → identity (inode, size, mtime) when checked. */
  private readonly verified = new Map<string, string>();

  constructor(root: string) {
    this.root = root;
  }

  async prepare(): Promise<void> {
    for (const folder of ['blobs/sha256', 'blobs/sha512', 'objects', 'tags', 'tmp']) {
      await fs.mkdir(path.join(this.root, folder), { recursive: true, mode: 0o755 });
    }
  }

  /** A blob's bytes if present and intact; a damaged blob is removed. */
  async readBlob(digest: string): Promise<Buffer | undefined> {
    const file = this.blobPath(digest);
    const bytes = await fs.readFile(file).catch(ignoreMissing);
    if (bytes === undefined) return undefined;
    if (digestOf(bytes, splitDigest(digest).algorithm) === digest) return bytes;

    await fs.rm(file, { force: true });
    return undefined;
  }

  /** Stores bytes the caller has already checked against `digest`. */
  async writeBlob(digest: string, bytes: Buffer): Promise<void> {
    if (digestOf(bytes, splitDigest(digest).algorithm) !== digest) {
      throw new Error(`refusing to cache content under the wrong digest ${digest}`);
    }
    await this.writeAtomically(this.blobPath(digest), bytes);
  }

  /** The digest a tag pointed to at its last pull. */
  async readTag(canonicalTag: string): Promise<string | undefined> {
    const text = await fs.readFile(this.tagPath(canonicalTag), 'utf8').catch(ignoreMissing);
    if (text === undefined) return undefined;
    try {
      const entry = JSON.parse(text) as { reference?: unknown; digest?: unknown };
      if (entry.reference !== canonicalTag || typeof entry.digest !== 'string') return undefined;
      return isDigest(entry.digest) ? entry.digest : undefined;
    } catch {
      return undefined;
    }
  }

  async writeTag(canonicalTag: string, digest: string): Promise<void> {
    const text = JSON.stringify({ reference: canonicalTag, digest }, null, 2) + '\n';
    await this.writeAtomically(this.tagPath(canonicalTag), Buffer.from(text));
  }

  /** The object of an image manifest, if present and intact; a damaged entry is removed. */
  async readObject(manifestDigest: string): Promise<CachedObject | undefined> {
    const folder = this.objectFolder(manifestDigest);
    const record = await this.readRecord(folder, manifestDigest);
    if (record === undefined) return undefined;

    const objectPath = path.join(folder, record.objectFile);
    if (await this.objectIsIntact(objectPath, record)) return { record, objectPath };
    await fs.rm(folder, { recursive: true, force: true });
    return undefined;
  }

  /** A new private folder under tmp/ for one download or unpacking. */
  async makeWorkFolder(): Promise<string> {
    return fs.mkdtemp(path.join(this.root, 'tmp', 'work-'));
  }

  /**
   * Moves an unpacked object (file `record.objectFile` in `workFolder`) into the cache. When
   * another pull got there first, its intact entry is kept and returned.
   */
  async commitObject(workFolder: string, record: ObjectRecord): Promise<CachedObject> {
    await fs.writeFile(path.join(workFolder, RECORD_FILE), JSON.stringify(record, null, 2) + '\n');
    await syncFile(path.join(workFolder, record.objectFile));
    await fs.chmod(workFolder, 0o755);

    const existing = await this.readObject(record.manifestDigest);
    if (existing !== undefined) {
      await fs.rm(workFolder, { recursive: true, force: true });
      return existing;
    }

    // readObject removed a damaged entry; a concurrent commit may still win the rename.
    const folder = this.objectFolder(record.manifestDigest);
    await fs.mkdir(path.dirname(folder), { recursive: true });
    try {
      await fs.rename(workFolder, folder);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      await fs.rm(workFolder, { recursive: true, force: true });
    }
    return { record, objectPath: path.join(folder, record.objectFile) };
  }

  /**
   * Removes every object whose manifest digest is not in `inUse`, then every blob and tag that
   * no remaining object needs, then leftovers in tmp/. Returns the removed manifest digests.
   * `isIndexOf(bytes, kept)` says whether a blob is an index that lists a kept manifest.
   */
  async collectGarbage(
    inUse: Set<string>,
    isIndexOf: (bytes: Buffer, kept: Set<string>) => boolean,
  ): Promise<string[]> {
    const removed: string[] = [];
    const keptBlobs = new Set<string>();
    for (const digest of await this.listDigests('objects')) {
      const record = inUse.has(digest)
        ? await this.readRecord(this.objectFolder(digest), digest)
        : undefined;
      if (record === undefined) {
        await fs.rm(this.objectFolder(digest), { recursive: true, force: true });
        removed.push(digest);
        continue;
      }
      keptBlobs.add(record.manifestDigest).add(record.configDigest);
    }

    await this.removeUnneededBlobs(keptBlobs, isIndexOf);
    await this.removeUnneededTags(keptBlobs);
    await fs.rm(path.join(this.root, 'tmp'), { recursive: true, force: true });
    await fs.mkdir(path.join(this.root, 'tmp'), { recursive: true, mode: 0o755 });
    return removed.sort();
  }

  /** A file name for the object that libbpf can be given as it is. */
  static objectFileName(pathInLayer: string): string {
    const base = path.posix.basename(pathInLayer);
    return SAFE_FILE_NAME.test(base) && base !== RECORD_FILE ? base : 'object.o';
  }

  private async removeUnneededBlobs(
    keptBlobs: Set<string>,
    isIndexOf: (bytes: Buffer, kept: Set<string>) => boolean,
  ): Promise<void> {
    const candidates = (await this.listDigests('blobs')).filter((d) => !keptBlobs.has(d));
    const manifests = new Set(keptBlobs);
    for (const digest of candidates) {
      const bytes = await this.readBlob(digest);
      if (bytes !== undefined && isIndexOf(bytes, manifests)) {
        keptBlobs.add(digest);
        continue;
      }
      await fs.rm(this.blobPath(digest), { force: true });
    }
  }

  private async removeUnneededTags(keptBlobs: Set<string>): Promise<void> {
    const folder = path.join(this.root, 'tags');
    for (const name of await fs.readdir(folder).catch(() => [] as string[])) {
      const file = path.join(folder, name);
      const text = await fs.readFile(file, 'utf8').catch(() => '');
      let digest: unknown;
      try {
        digest = JSON.parse(text).digest;
      } catch {
        digest = undefined;
      }
      if (typeof digest !== 'string' || !keptBlobs.has(digest)) await fs.rm(file, { force: true });
    }
  }

  /** Digests present under `blobs/` or `objects/`, from their `<algorithm>/<hex>` names. */
  private async listDigests(kind: 'blobs' | 'objects'): Promise<string[]> {
    const digests: string[] = [];
    for (const algorithm of ['sha256', 'sha512']) {
      const folder = path.join(this.root, kind, algorithm);
      for (const hex of await fs.readdir(folder).catch(() => [] as string[])) {
        const digest = `${algorithm}:${hex}`;
        if (isDigest(digest)) digests.push(digest);
      }
    }
    return digests;
  }

  private async readRecord(folder: string, digest: string): Promise<ObjectRecord | undefined> {
    const text = await fs.readFile(path.join(folder, RECORD_FILE), 'utf8').catch(ignoreMissing);
    if (text === undefined) return undefined;
    try {
      const record = JSON.parse(text) as ObjectRecord;
      const valid =
        record.manifestDigest === digest &&
        typeof record.objectFile === 'string' &&
        SAFE_FILE_NAME.test(record.objectFile) &&
        typeof record.objectDigest === 'string' &&
        isDigest(record.objectDigest);
      if (valid) return record;
    } catch {
      // A damaged record is handled like a missing one below.
    }
    await fs.rm(folder, { recursive: true, force: true });
    return undefined;
  }

  /** Hashes the object once per process and again whenever the file changes. */
  private async objectIsIntact(objectPath: string, record: ObjectRecord): Promise<boolean> {
    const stats = await fs.stat(objectPath).catch(ignoreMissing);
    if (stats === undefined || !stats.isFile()) return false;

    const identity = `${stats.ino}:${stats.size}:${stats.mtimeMs}`;
    if (this.verified.get(objectPath) === identity) return true;
    const intact = (await digestOfFile(objectPath)) === record.objectDigest;
    if (intact) this.verified.set(objectPath, identity);
    return intact;
  }

  private async writeAtomically(file: string, bytes: Buffer): Promise<void> {
    const temporary = path.join(this.root, 'tmp', `write-${randomUUID()}`);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const handle = await fs.open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temporary, file);
  }

  private blobPath(digest: string): string {
    const { algorithm, hex } = splitDigest(digest);
    return path.join(this.root, 'blobs', algorithm, hex);
  }

  private objectFolder(digest: string): string {
    const { algorithm, hex } = splitDigest(digest);
    return path.join(this.root, 'objects', algorithm, hex);
  }

  private tagPath(canonicalTag: string): string {
    return path.join(this.root, 'tags', `${digestOf(Buffer.from(canonicalTag)).slice(7)}.json`);
  }
}

async function syncFile(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function ignoreMissing(error: unknown): undefined {
  if ((error as { code?: string }).code === 'ENOENT') return undefined;
  throw error;
}
