/**
 * OCI image layouts (a folder with `oci-layout`, `index.json` and `blobs/`): writing the
 * bytecode image of one object file, and reading a layout back for a push.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import { BpfdError } from '../errors.js';
import { digestOf, isDigest, splitDigest } from './digest.js';
import { ImageBuildError } from './errors.js';
import { checkBpfElf, MAX_OBJECT_BYTES } from './layer.js';
import {
  labelKey,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPE,
  parseManifest,
  type BytecodeLabels,
  type Descriptor,
  type Manifest,
} from './manifest.js';
import { writeTar } from './tar.js';
import { goArchitecture } from './types.js';

const LAYOUT_VERSION = JSON.stringify({ imageLayoutVersion: '1.0.0' });
const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const PROGRAM_TYPE = /^[a-z][a-z0-9_]*$/;
const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface BuildImageOptions {
  objectPath: string;
  outDir: string;
  programType: string;
  programName?: string;
  sectionName?: string;
  /** Go-style architecture recorded in the image config; default this node's. */
  arch?: string;
}

/**
 * Packs one BPF object into a bytecode image in an OCI layout at `outDir` (new or empty): one
 * gzipped layer with the object at its root, and the `io.ebpf.*` labels in the config.
 */
export async function buildImageLayout(
  options: BuildImageOptions,
): Promise<{ manifestDigest: string }> {
  const fileName = path.basename(options.objectPath);
  if (!OBJECT_NAME.test(fileName)) {
    throw new ImageBuildError(
      `object file name ${JSON.stringify(fileName)} has unusual characters`,
    );
  }
  if (!PROGRAM_TYPE.test(options.programType)) {
    throw new ImageBuildError(`program type ${JSON.stringify(options.programType)} is not valid`);
  }
  const content = await readObject(options.objectPath);

  const labels: BytecodeLabels = { programType: options.programType, filename: fileName };
  if (options.programName) labels.programName = options.programName;
  if (options.sectionName) labels.sectionName = options.sectionName;
  const layer = writeTar([{ path: fileName, content, mode: 0o644 }]);
  const image = { layer, labels: labelMap(labels), arch: options.arch ?? goArchitecture() };
  return writeImageLayout(options.outDir, [image]);
}

/** One image of a layout: an uncompressed tar layer (gzipped here) and its config labels. */
export interface LayoutImage {
  layer: Buffer;
  labels: Record<string, string>;
  arch: string;
}

/**
 * Writes a layout holding one image, or an image index over several (one per architecture).
 * Returns the digest of the top manifest or index.
 */
export async function writeImageLayout(
  outDir: string,
  images: LayoutImage[],
  tag = 'latest',
): Promise<{ manifestDigest: string }> {
  await prepareOutDir(outDir);
  const manifests: Descriptor[] = [];
  for (const image of images) manifests.push(await writeImage(outDir, image));

  let top = manifests[0];
  if (images.length > 1) {
    const index = { schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests };
    top = await writeJsonBlob(outDir, MEDIA_TYPE.ociIndex, index);
  }

  const entry = { ...top, annotations: { [REF_NAME_ANNOTATION]: tag } };
  const index = { schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests: [entry] };
  await fs.writeFile(path.join(outDir, 'oci-layout'), LAYOUT_VERSION + '\n');
  await fs.writeFile(path.join(outDir, 'index.json'), JSON.stringify(index, null, 2) + '\n');
  return { manifestDigest: top.digest };
}

async function writeImage(outDir: string, image: LayoutImage): Promise<Descriptor> {
  const compressed = zlib.gzipSync(image.layer, { level: 9 });
  const layer = await writeBlob(outDir, MEDIA_TYPE.ociLayerGzip, compressed);
  const config = await writeJsonBlob(outDir, MEDIA_TYPE.ociConfig, {
    architecture: image.arch,
    os: 'linux',
    config: { Labels: image.labels },
    rootfs: { type: 'layers', diff_ids: [digestOf(image.layer)] },
  });
  const manifest = await writeJsonBlob(outDir, MEDIA_TYPE.ociManifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    config,
    layers: [layer],
  });
  return { ...manifest, platform: { architecture: image.arch, os: 'linux' } };
}

/** A layout read for a push: the top manifest or index, and access to its blobs. */
export interface ImageLayout {
  top: Descriptor;
  topBytes: Buffer;
  topManifest: Manifest;
  readBlob(descriptor: Descriptor): Promise<Buffer>;
  readManifest(descriptor: Descriptor): Promise<Manifest>;
}

/**
 * Opens a layout written by us or another tool. Its `index.json` must name one image (or
 * index); with several entries, they are pushed as one index. Throws ImageBuildError.
 */
export async function readImageLayout(layoutDir: string): Promise<ImageLayout> {
  const version = await fs.readFile(path.join(layoutDir, 'oci-layout'), 'utf8').catch(() => '');
  if (!version.includes('imageLayoutVersion')) {
    throw new ImageBuildError(`${layoutDir} is not an OCI image layout (no oci-layout file)`);
  }
  const indexBytes = await fs.readFile(path.join(layoutDir, 'index.json')).catch(() => undefined);
  if (indexBytes === undefined) throw new ImageBuildError(`${layoutDir} has no index.json`);
  const index = parseLayoutManifest(layoutDir, indexBytes);
  if (index.kind !== 'index' || index.manifests.length === 0) {
    throw new ImageBuildError(`${layoutDir}/index.json lists no image`);
  }

  const readBlob = (descriptor: Descriptor) => readLayoutBlob(layoutDir, descriptor);
  const readManifest = async (descriptor: Descriptor) =>
    parseLayoutManifest(layoutDir, await readBlob(descriptor), descriptor.mediaType);

  if (index.manifests.length === 1) {
    const top = index.manifests[0];
    const topBytes = await readBlob(top);
    const topManifest = parseLayoutManifest(layoutDir, topBytes, top.mediaType);
    return { top, topBytes, topManifest, readBlob, readManifest };
  }
  const combined = { schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests: index.manifests };
  const topBytes = Buffer.from(JSON.stringify(combined));
  const top = { mediaType: MEDIA_TYPE.ociIndex, digest: digestOf(topBytes), size: topBytes.length };
  const topManifest = parseLayoutManifest(layoutDir, topBytes, top.mediaType);
  return { top, topBytes, topManifest, readBlob, readManifest };
}

async function readLayoutBlob(layoutDir: string, descriptor: Descriptor): Promise<Buffer> {
  if (!isDigest(descriptor.digest)) {
    throw new ImageBuildError(`${layoutDir}: invalid digest ${descriptor.digest}`);
  }
  const { algorithm, hex } = splitDigest(descriptor.digest);
  const file = path.join(layoutDir, 'blobs', algorithm, hex);
  const bytes = await fs.readFile(file).catch(() => undefined);
  if (bytes === undefined) throw new ImageBuildError(`${layoutDir}: blob ${file} is missing`);
  if (digestOf(bytes, algorithm) !== descriptor.digest) {
    throw new ImageBuildError(`${layoutDir}: blob ${file} does not match its digest`);
  }
  return bytes;
}

function parseLayoutManifest(layoutDir: string, bytes: Buffer, mediaType?: string): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ImageBuildError(`${layoutDir}: a manifest is larger than 4 MiB`);
  }
  try {
    return parseManifest(layoutDir, bytes, mediaType);
  } catch (error) {
    if (!(error instanceof BpfdError)) throw error;
    throw new ImageBuildError(error.message);
  }
}

async function readObject(objectPath: string): Promise<Buffer> {
  const stats = await fs.stat(objectPath).catch(() => undefined);
  if (stats === undefined || !stats.isFile()) {
    throw new ImageBuildError(`object file ${objectPath} does not exist or is not a file`);
  }
  if (stats.size > MAX_OBJECT_BYTES) {
    throw new ImageBuildError(`object file ${objectPath} is larger than 64 MiB`);
  }
  try {
    await checkBpfElf(objectPath, objectPath);
  } catch (error) {
    if (!(error instanceof BpfdError)) throw error;
    throw new ImageBuildError(error.message);
  }
  return fs.readFile(objectPath);
}

async function prepareOutDir(outDir: string): Promise<void> {
  const entries = await fs.readdir(outDir).catch((error: { code?: string }) => {
    if (error.code === 'ENOENT') return [];
    throw new ImageBuildError(`output folder ${outDir} cannot be read (${error.code})`);
  });
  if (entries.length > 0) {
    throw new ImageBuildError(`output folder ${outDir} is not empty; give a new or empty folder`);
  }
  await fs.mkdir(path.join(outDir, 'blobs', 'sha256'), { recursive: true });
}

async function writeBlob(outDir: string, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const digest = digestOf(bytes);
  await fs.writeFile(path.join(outDir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { mediaType, digest, size: bytes.length };
}

function writeJsonBlob(outDir: string, mediaType: string, document: object): Promise<Descriptor> {
  return writeBlob(outDir, mediaType, Buffer.from(JSON.stringify(document)));
}

function labelMap(labels: BytecodeLabels): Record<string, string> {
  const map: Record<string, string> = {};
  for (const [field, value] of Object.entries(labels)) {
    if (value !== undefined) map[labelKey(field as keyof BytecodeLabels)] = value;
  }
  return map;
}
