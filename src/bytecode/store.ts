/**
 * `bytecode.image` on this node: resolve a reference to an object file in the cache,
 * pulling according to `imagepullpolicy`, and collect cache entries nothing uses.
 *
 * Pull policies, as bpfd defines them:
 * - `IfNotPresent` (default): use the cached image; pull only when it is not cached. Works
 *   with the registry down once the image is cached.
 * - `Always`: ask the registry what the tag points to on every resolve (a HEAD request);
 *   download only when that changed. Fails when the registry cannot be asked.
 * - `Never`: use the cached image; fail when it is not cached.
 * A reference by digest names immutable content: once cached it is never fetched again,
 * whatever the policy.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import { BpfdError } from '../errors.js';
import { ImageCache, type CachedObject } from './cache.js';
import {
  ImageCacheError,
  ImageFormatError,
  ImageNotPresentError,
  ImageReferenceError,
} from './errors.js';
import { extractObject } from './layer.js';
import { CacheLock } from './lock.js';
import {
  bytecodeLayer,
  MAX_CONFIG_BYTES,
  MAX_LAYER_BYTES,
  parseConfigLabels,
  parseManifest,
  selectPlatform,
  type BytecodeLabels,
  type Manifest,
} from './manifest.js';
import { formatImageReference, parseImageReference, type ImageReference } from './reference.js';
import { RegistryClient } from './registry-client.js';
import {
  DEFAULT_RETRY_ATTEMPTS,
  DEFAULT_RETRY_BASE_DELAY_MS,
  sleep,
  type RetryPolicy,
} from './retry.js';
import { loadPullSecret } from './secrets.js';
import { TarFormatError } from './tar.js';
import { TrustStore } from './trust.js';
import { goArchitecture, type ImageLogger } from './types.js';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export const PULL_POLICIES: readonly PullPolicy[] = ['Always', 'IfNotPresent', 'Never'];
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ImageRequest {
  url: string;
  pullPolicy?: PullPolicy;
  pullSecret?: { name: string; namespace: string };
}

export interface ResolvedImage {
  /** The object file in the cache, safe to pass to libbpf. */
  objectPath: string;
  /** Digest of the image manifest the object came from (the platform's, for an index). */
  manifestDigest: string;
  /** The image index the manifest was chosen from, when the reference names an index. */
  indexDigest?: string;
  /** sha256 of the object file. */
  objectDigest: string;
  /** The reference in canonical form, e.g. `docker.io/library/xdp:latest`. */
  reference: string;
  labels: BytecodeLabels;
}

export interface ImageStoreOptions {
  stateDir: string;
  secretsDir: string;
  insecureRegistries: string[];
  caFiles: Record<string, string>;
  logger?: ImageLogger;
  /** Go-style architecture picked from image indexes; default from process.arch. */
  arch?: string;
  retry?: { attempts: number; baseDelayMs: number; sleep?: (ms: number) => Promise<void> };
  /** Inactivity limit of one registry connection. */
  timeoutMs?: number;
}

interface CacheHit {
  topDigest: string;
  image: ResolvedImage;
}

const SILENT: ImageLogger = { debug() {}, info() {}, warn() {}, error() {} };

export class ImageStore {
  private readonly options: ImageStoreOptions;
  private readonly cache: ImageCache;
  private readonly trust: TrustStore;
  private readonly logger: ImageLogger;
  private readonly retry: RetryPolicy;
  private readonly arch: string;
  private readonly lock = new CacheLock();
  private prepared: Promise<void> | undefined;

  constructor(options: ImageStoreOptions) {
    this.options = options;
    this.cache = new ImageCache(path.join(options.stateDir, 'images'));
    this.trust = new TrustStore(options.caFiles);
    this.logger = options.logger ?? SILENT;
    this.arch = options.arch ?? goArchitecture();
    this.retry = {
      attempts: options.retry?.attempts ?? DEFAULT_RETRY_ATTEMPTS,
      baseDelayMs: options.retry?.baseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS,
      sleep: options.retry?.sleep ?? sleep,
    };
  }

  /** The object of `request.url`, pulled or cached as its policy says. Throws ImageError. */
  async resolve(request: ImageRequest): Promise<ResolvedImage> {
    const reference = parseImageReference(request.url);
    const policy = request.pullPolicy ?? 'IfNotPresent';
    if (!PULL_POLICIES.includes(policy)) {
      const allowed = PULL_POLICIES.join(', ');
      const message = `imagepullpolicy ${JSON.stringify(policy)} is not one of ${allowed}`;
      throw new ImageReferenceError(request.url, message);
    }

    const key = formatImageReference(reference);
    return this.lock.shared(key, () =>
      this.guarded(request.url, () => this.resolveLocked(request, reference, policy)),
    );
  }

  /**
   * Removes cached images whose manifest digest is not in `inUse`, and everything only they
   * needed. Returns the removed manifest digests.
   */
  async collectGarbage(inUse: Set<string>): Promise<string[]> {
    return this.lock.exclusive(() =>
      this.guarded(this.cache.root, async () => {
        const removed = await this.cache.collectGarbage(inUse, isIndexListing);
        if (removed.length > 0) {
          this.logger.info({ removed, cache: this.cache.root }, 'removed unused bytecode images');
        }
        return removed;
      }),
    );
  }

  private async resolveLocked(
    request: ImageRequest,
    reference: ImageReference,
    policy: PullPolicy,
  ): Promise<ResolvedImage> {
    const tagKey = tagKeyOf(reference);
    const pinned = reference.digest ?? (tagKey ? await this.cache.readTag(tagKey) : undefined);
    const hit =
      pinned === undefined ? undefined : await this.fromCache(request.url, reference, pinned);
    if (hit && (reference.digest !== undefined || policy !== 'Always')) {
      this.logger.debug({ image: request.url, digest: hit.image.manifestDigest }, 'image cached');
      return hit.image;
    }
    if (policy === 'Never') throw new ImageNotPresentError(request.url);

    const client = await this.clientFor(request, reference);
    try {
      return await this.pull(client, request.url, reference, hit);
    } finally {
      client.close();
    }
  }

  private async clientFor(request: ImageRequest, reference: ImageReference) {
    const secret = request.pullSecret;
    const credentials =
      secret === undefined
        ? undefined
        : await loadPullSecret(
            this.options.secretsDir,
            secret,
            reference.registry,
            request.url,
            this.logger,
          );
    return new RegistryClient({
      reference: request.url,
      registry: reference.registry,
      repository: reference.repository,
      actions: ['pull'],
      credentials,
      insecureRegistries: this.options.insecureRegistries,
      trust: this.trust,
      timeoutMs: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      retry: this.retry,
      logger: this.logger,
    });
  }

  private async pull(
    client: RegistryClient,
    shown: string,
    reference: ImageReference,
    hit: CacheHit | undefined,
  ): Promise<ResolvedImage> {
    const target = reference.digest ?? (reference.tag as string);
    if (hit !== undefined && (await client.manifestDigest(target)) === hit.topDigest) {
      this.logger.debug({ image: shown, digest: hit.topDigest }, 'image tag unchanged');
      return hit.image;
    }

    const top = await client.fetchManifest(target, reference.digest);
    await this.cache.writeBlob(top.digest, top.bytes);
    const chosen = await this.chooseManifest(client, shown, top.digest, top.bytes, top.contentType);

    const cached = await this.cache.readObject(chosen.digest);
    const object = cached ?? (await this.download(client, shown, chosen.manifest, chosen.digest));
    const tagKey = tagKeyOf(reference);
    if (tagKey !== undefined && reference.digest === undefined) {
      await this.cache.writeTag(tagKey, top.digest);
    }

    const image = resolvedImage(reference, object, chosen.indexDigest);
    const fields = { image: shown, digest: image.manifestDigest, object: image.objectPath };
    this.logger.info(fields, cached ? 'image manifest pulled' : 'bytecode image pulled');
    return image;
  }

  /** The image manifest itself, or this node's platform from an index. */
  private async chooseManifest(
    client: RegistryClient,
    shown: string,
    topDigest: string,
    topBytes: Buffer,
    contentType?: string,
  ): Promise<{ digest: string; manifest: Manifest & { kind: 'image' }; indexDigest?: string }> {
    const top = parseManifest(shown, topBytes, contentType);
    if (top.kind === 'image') return { digest: topDigest, manifest: top };

    const entry = selectPlatform(shown, top.manifests, this.arch);
    let bytes = await this.cache.readBlob(entry.digest);
    if (bytes === undefined) {
      bytes = (await client.fetchManifest(entry.digest, entry.digest)).bytes;
      await this.cache.writeBlob(entry.digest, bytes);
    }
    const manifest = parseManifest(shown, bytes, entry.mediaType);
    if (manifest.kind !== 'image') {
      throw new ImageFormatError(shown, `index entry ${entry.digest} is itself an index`);
    }
    return { digest: entry.digest, manifest, indexDigest: topDigest };
  }

  /** Config and layer down, object out of the layer, into the cache. */
  private async download(
    client: RegistryClient,
    shown: string,
    manifest: Manifest & { kind: 'image' },
    manifestDigest: string,
  ): Promise<CachedObject> {
    const labels = await this.labelsOf(client, shown, manifest);
    const layer = bytecodeLayer(shown, manifest);
    const downloads = await this.cache.makeWorkFolder();
    const unpacked = await this.cache.makeWorkFolder();
    try {
      const layerFile = path.join(downloads, 'layer');
      await client.downloadBlob(layer, layerFile, MAX_LAYER_BYTES, `layer ${layer.digest}`);

      const extracting = path.join(unpacked, '.extracting');
      const extracted = await extractObject(layerFile, labels.filename, extracting).catch(
        (error: unknown) => {
          if (!(error instanceof TarFormatError)) throw error;
          throw new ImageFormatError(shown, `layer ${layer.digest}: ${error.message}`);
        },
      );
      const objectFile = ImageCache.objectFileName(extracted.pathInLayer);
      await fs.rename(extracting, path.join(unpacked, objectFile));

      return await this.cache.commitObject(unpacked, {
        manifestDigest,
        configDigest: manifest.config.digest,
        layerDigest: layer.digest,
        objectFile,
        objectDigest: extracted.digest,
        objectSize: extracted.size,
        labels,
        pathInLayer: extracted.pathInLayer,
      });
    } finally {
      await fs.rm(downloads, { recursive: true, force: true });
      await fs.rm(unpacked, { recursive: true, force: true });
    }
  }

  private async labelsOf(
    client: RegistryClient,
    shown: string,
    manifest: Manifest & { kind: 'image' },
  ): Promise<BytecodeLabels> {
    const config = manifest.config;
    let bytes = await this.cache.readBlob(config.digest);
    if (bytes === undefined) {
      bytes = await client.fetchBlob(config, MAX_CONFIG_BYTES, `config ${config.digest}`);
      await this.cache.writeBlob(config.digest, bytes);
    }
    return parseConfigLabels(shown, bytes);
  }

  /** The cached image a digest leads to, with everything on the way checked. */
  private async fromCache(
    shown: string,
    reference: ImageReference,
    topDigest: string,
  ): Promise<CacheHit | undefined> {
    const bytes = await this.cache.readBlob(topDigest);
    if (bytes === undefined) return undefined;

    let manifestDigest = topDigest;
    let indexDigest: string | undefined;
    try {
      const top = parseManifest(shown, bytes);
      if (top.kind === 'index') {
        manifestDigest = selectPlatform(shown, top.manifests, this.arch).digest;
        indexDigest = topDigest;
      }
    } catch (error) {
      if (error instanceof ImageFormatError) return undefined;
      throw error;
    }

    const object = await this.cache.readObject(manifestDigest);
    if (object === undefined) return undefined;
    return { topDigest, image: resolvedImage(reference, object, indexDigest) };
  }

  private prepare(): Promise<void> {
    this.prepared ??= this.cache.prepare().catch((error: unknown) => {
      this.prepared = undefined;
      throw error;
    });
    return this.prepared;
  }

  /** Creates the cache folders first; turns file-system failures into ImageCacheError. */
  private async guarded<T>(shown: string, work: () => Promise<T>): Promise<T> {
    try {
      await this.prepare();
      return await work();
    } catch (error) {
      if (error instanceof BpfdError) throw error;
      const code = (error as { code?: string }).code;
      if (code === undefined) throw error;
      const message = `image cache ${this.cache.root}: ${(error as Error).message}`;
      throw new ImageCacheError(shown, message, { cause: error });
    }
  }
}

function resolvedImage(
  reference: ImageReference,
  object: CachedObject,
  indexDigest: string | undefined,
): ResolvedImage {
  const image: ResolvedImage = {
    objectPath: object.objectPath,
    manifestDigest: object.record.manifestDigest,
    objectDigest: object.record.objectDigest,
    reference: formatImageReference(reference),
    labels: { ...object.record.labels },
  };
  if (indexDigest !== undefined) image.indexDigest = indexDigest;
  return image;
}

/** `registry/repository:tag`, the key of a tag in the cache; undefined for digest references. */
function tagKeyOf(reference: ImageReference): string | undefined {
  if (reference.tag === undefined) return undefined;
  return `${reference.registry}/${reference.repository}:${reference.tag}`;
}

function isIndexListing(bytes: Buffer, kept: Set<string>): boolean {
  try {
    const manifest = parseManifest('cache', bytes);
    return manifest.kind === 'index' && manifest.manifests.some((entry) => kept.has(entry.digest));
  } catch {
    return false;
  }
}
