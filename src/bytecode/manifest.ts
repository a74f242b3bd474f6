/**
 * OCI and Docker v2 manifests, image indexes / manifest lists and image configs: parsing,
 * checks, and the choice of this node's platform in an index.
 */
import { ImageFormatError } from './errors.js';
import { isDigest } from './digest.js';

export const MEDIA_TYPE = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** What a manifest request accepts, most wanted first. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE.ociIndex,
  MEDIA_TYPE.ociManifest,
  MEDIA_TYPE.dockerManifestList,
  MEDIA_TYPE.dockerManifest,
].join(', ');

const INDEX_TYPES = new Set<string>([MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifestList]);
const IMAGE_TYPES = new Set<string>([MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifest]);
const LAYER_TYPES = new Set<string>([
  MEDIA_TYPE.ociLayerGzip,
  MEDIA_TYPE.ociLayer,
  MEDIA_TYPE.dockerLayerGzip,
]);

/** Bytes larger than these are refused before they are read. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
export const MAX_LAYER_BYTES = 64 * 1024 * 1024;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export type Manifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'image'; mediaType: string; config: Descriptor; layers: Descriptor[] };

/** The `io.ebpf.*` labels of a bytecode image. */
export interface BytecodeLabels {
  programType?: string;
  filename?: string;
  programName?: string;
  sectionName?: string;
}

const LABEL_KEYS: Record<keyof BytecodeLabels, string> = {
  programType: 'io.ebpf.program_type',
  filename: 'io.ebpf.filename',
  programName: 'io.ebpf.program_name',
  sectionName: 'io.ebpf.section_name',
};

/**
 * An image manifest or an index. The media type comes from the document's `mediaType`, else
 * the response's Content-Type, else the document's shape. Docker schema 1 is refused.
 */
export function parseManifest(reference: string, bytes: Buffer, contentType?: string): Manifest {
  const document = parseJsonObject(reference, bytes, 'manifest');
  const fail = (problem: string): never => {
    throw new ImageFormatError(reference, `manifest ${problem}`);
  };
  if (document.schemaVersion === 1) {
    fail('is Docker schema 1, which is not supported; push the image again with a current tool');
  }
  if (document.schemaVersion !== 2) fail('has no schemaVersion 2');

  const mediaType = manifestMediaType(document, contentType);
  if (INDEX_TYPES.has(mediaType)) {
    const manifests = descriptorList(reference, document.manifests, 'manifests');
    return { kind: 'index', mediaType, manifests };
  }
  if (!IMAGE_TYPES.has(mediaType)) fail(`has media type ${mediaType}, not an image or an index`);

  const config = descriptor(reference, document.config, 'config');
  const layers = descriptorList(reference, document.layers, 'layers');
  return { kind: 'image', mediaType, config, layers };
}

function manifestMediaType(document: Record<string, unknown>, contentType?: string): string {
  if (typeof document.mediaType === 'string') return document.mediaType;
  const declared = contentType?.split(';')[0].trim();
  if (declared && (INDEX_TYPES.has(declared) || IMAGE_TYPES.has(declared))) return declared;
  return Array.isArray(document.manifests) ? MEDIA_TYPE.ociIndex : MEDIA_TYPE.ociManifest;
}

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

/**
 * The entry of an index for `linux/<arch>`; with several, the first (registries list the
 * preferred variant first). Throws an ImageFormatError listing the platforms on offer.
 */
export function selectPlatform(
  reference: string,
  manifests: Descriptor[],
  arch: string,
): Descriptor {
  const matching = manifests.filter(
    (entry) =>
      entry.platform !== undefined &&
      entry.platform.os === 'linux' &&
      entry.platform.architecture === arch &&
      IMAGE_TYPES.has(entry.mediaType),
  );
  if (matching.length > 0) return matching[0];

  const offered = manifests
    .map((entry) => entry.platform)
    .filter((platform): platform is Platform => platform !== undefined)
    .map((platform) => [platform.os, platform.architecture, platform.variant].filter(Boolean))
    .map((parts) => parts.join('/'));
  const list = offered.length > 0 ? offered.join(', ') : 'none';
  throw new ImageFormatError(
    reference,
    `image index has no manifest for linux/${arch}; platforms in the index: ${list}`,
  );
}

/** The single layer of a bytecode image. */
export function bytecodeLayer(
  reference: string,
  manifest: Manifest & { kind: 'image' },
): Descriptor {
  if (manifest.layers.length !== 1) {
    // LIMITATION: bpfd's format has one layer; merging layers (and whiteouts) is not done.
    throw new ImageFormatError(
      reference,
      `has ${manifest.layers.length} layers; a bytecode image has exactly one layer ` +
        'holding the object file',
    );
  }
  const layer = manifest.layers[0];
  if (!LAYER_TYPES.has(layer.mediaType)) {
    throw new ImageFormatError(
      reference,
      `layer has media type ${layer.mediaType}; expected a tar or gzipped tar layer`,
    );
  }
  return layer;
}

/** The `io.ebpf.*` labels from an image config (`config.Labels`); none is fine. */
export function parseConfigLabels(reference: string, bytes: Buffer): BytecodeLabels {
  const document = parseJsonObject(reference, bytes, 'image config');
  const config = document.config;
  const labels =
    typeof config === 'object' && config !== null
      ? (config as Record<string, unknown>).Labels
      : undefined;
  if (typeof labels !== 'object' || labels === null) return {};

  const result: BytecodeLabels = {};
  for (const [field, key] of Object.entries(LABEL_KEYS)) {
    const value = (labels as Record<string, unknown>)[key];
    if (typeof value === 'string' && value !== '') result[field as keyof BytecodeLabels] = value;
  }
  return result;
}

/** The label names, for docs and for `bpfd image build`. */
export function labelKey(field: keyof BytecodeLabels): string {
  return LABEL_KEYS[field];
}

function parseJsonObject(reference: string, bytes: Buffer, what: string): Record<string, any> {
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ImageFormatError(reference, `${what} is not valid JSON`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new ImageFormatError(reference, `${what} is not a JSON object`);
  }
  return document as Record<string, any>;
}

function descriptorList(reference: string, value: unknown, field: string): Descriptor[] {
  if (!Array.isArray(value)) {
    throw new ImageFormatError(reference, `manifest field ${field} is not a list`);
  }
  return value.map((entry, position) => descriptor(reference, entry, `${field}[${position}]`));
}

function descriptor(reference: string, value: unknown, field: string): Descriptor {
  const entry = (typeof value === 'object' && value !== null ? value : {}) as Record<string, any>;
  const fail = (problem: string): never => {
    throw new ImageFormatError(reference, `manifest field ${field} ${problem}`);
  };
  if (typeof entry.mediaType !== 'string') fail('has no mediaType');
  if (typeof entry.digest !== 'string' || !isDigest(entry.digest)) fail('has no valid digest');
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) fail('has no valid size');

  const result: Descriptor = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
  const platform = entry.platform;
  if (typeof platform?.architecture === 'string' && typeof platform?.os === 'string') {
    result.platform = { architecture: platform.architecture, os: platform.os };
    if (typeof platform.variant === 'string') result.platform.variant = platform.variant;
  }
  return result;
}
