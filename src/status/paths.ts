import path from 'node:path';

import { statusError } from './conditions.js';

const MANIFEST_EXTENSION = /\.(yaml|yml)$/;
const SIDECAR_SUFFIX = /\.status\.(yaml|yml)$/;

/** Whether a file name (or path) is a status sidecar, which the watcher must never load. */
export function isSidecarFileName(file: string): boolean {
  return SIDECAR_SUFFIX.test(path.basename(file));
}

/**
 * Where the sidecar of `manifestFile` lives: beside it (`x.yaml` → `x.status.yaml`, `x.yml` →
 * `x.status.yml`), or, with a status dir, at the manifest's path relative to `manifestDir`
 * under `statusDir`. Throws a BpfdError (`BPFD_E_STATUS`) for a file that is not a manifest, or
 * that lies outside `manifestDir` while a status dir is set.
 */
export function sidecarPath(manifestFile: string, manifestDir: string, statusDir?: string): string {
  const fileName = path.basename(manifestFile);
  if (!MANIFEST_EXTENSION.test(fileName)) {
    throw statusError(`${manifestFile}: not a manifest file (*.yaml or *.yml), so no sidecar`);
  }
  const sidecarName = fileName.replace(MANIFEST_EXTENSION, '.status.$1');

  if (statusDir === undefined) return path.join(path.dirname(manifestFile), sidecarName);

  const relativeDir = path.dirname(relativeToManifestDir(manifestFile, manifestDir));
  return path.join(path.resolve(statusDir), relativeDir, sidecarName);
}

/** The inverse of sidecarPath: which manifest a sidecar reports on. */
export function manifestFileOf(sidecar: string, manifestDir: string, statusDir?: string): string {
  const manifestName = path.basename(sidecar).replace(SIDECAR_SUFFIX, '.$1');
  if (statusDir === undefined) return path.join(path.dirname(sidecar), manifestName);

  const relativeDir = path.relative(path.resolve(statusDir), path.dirname(path.resolve(sidecar)));
  return path.join(path.resolve(manifestDir), relativeDir, manifestName);
}

/** The manifest's path as the sidecar header names it: relative when under `manifestDir`. */
export function displayPath(manifestFile: string, manifestDir: string): string {
  const relative = path.relative(path.resolve(manifestDir), path.resolve(manifestFile));
  return isInside(relative) ? relative : path.resolve(manifestFile);
}

function relativeToManifestDir(manifestFile: string, manifestDir: string): string {
  const relative = path.relative(path.resolve(manifestDir), path.resolve(manifestFile));
  if (!isInside(relative)) {
    throw statusError(
      `${manifestFile}: outside the manifest dir ${manifestDir}, so it has no place in the ` +
        'status dir',
    );
  }
  return relative;
}

function isInside(relative: string): boolean {
  const leavesDir = relative === '..' || relative.startsWith('..' + path.sep);
  return relative !== '' && !leavesDir && !path.isAbsolute(relative);
}
