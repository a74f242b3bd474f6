import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';

import yaml from 'js-yaml';

import { BpfdError } from '../errors.js';
import { statusError } from './conditions.js';
import {
  checkObjectStatuses,
  previousConditionsOf,
  renderSidecar,
  type ObjectStatus,
} from './documents.js';
import {
  errorCode,
  readRegularFile,
  removeEmptyDirectories,
  removeFile,
  writeFileAtomic,
} from './files.js';
import { displayPath, isSidecarFileName, manifestFileOf, sidecarPath } from './paths.js';

export interface StatusWriterOptions {
  manifestDir: string;
  /** Unset: sidecars beside the manifests. */
  statusDir?: string;
  nodeName: string;
  /** Clock for lastTransitionTime; tests inject one. */
  now?: () => Date;
}

/**
 * Writes one status sidecar per manifest file. Writes and removals of the same file run one
 * after another, in call order, so a late write never resurrects a removed sidecar.
 */
export class StatusWriter {
  private readonly manifestDir: string;
  private readonly statusDir: string | undefined;
  private readonly nodeName: string;
  private readonly now: () => Date;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(options: StatusWriterOptions) {
    this.manifestDir = path.resolve(options.manifestDir);
    this.statusDir = options.statusDir === undefined ? undefined : path.resolve(options.statusDir);
    this.nodeName = options.nodeName;
    this.now = options.now ?? (() => new Date());
  }

  /** The sidecar path of `manifestFile` under this writer's configuration. */
  sidecarPathOf(manifestFile: string): string {
    return sidecarPath(path.resolve(manifestFile), this.manifestDir, this.statusDir);
  }

  /**
   * Writes the sidecar of `manifestFile` for `objects` (the file's documents, in order). Returns
   * true when the file changed; unchanged content is not rewritten. lastTransitionTime is carried
   * over from the sidecar on disk, so it survives restarts. When the manifest itself is gone the
   * sidecar is removed instead and nothing is written. Throws a BpfdError (`BPFD_E_STATUS`)
   * before touching any file when a status would not validate.
   */
  async write(manifestFile: string, objects: ObjectStatus[]): Promise<boolean> {
    const manifest = path.resolve(manifestFile);
    const sidecar = this.sidecarPathOf(manifest);
    checkObjectStatuses(objects, manifest);

    return this.serialized(sidecar, () => this.writeNow(manifest, sidecar, objects));
  }

  /** Removes the sidecar of `manifestFile`; nothing happens when there is none. */
  async remove(manifestFile: string): Promise<void> {
    const sidecar = this.sidecarPathOf(manifestFile);
    return this.serialized(sidecar, () => this.removeNow(sidecar));
  }

  /**
   * Removes every sidecar whose manifest no longer exists (files deleted while the daemon was
   * down). Returns the removed paths. Hidden folders such as `.git/` are not searched.
   */
  async removeOrphans(): Promise<string[]> {
    const removed: string[] = [];

    for (const sidecar of await findSidecars(this.statusDir ?? this.manifestDir)) {
      const manifest = manifestFileOf(sidecar, this.manifestDir, this.statusDir);
      if (await exists(manifest)) continue;

      await this.serialized(sidecar, () => this.removeNow(sidecar));
      removed.push(sidecar);
    }
    return removed;
  }

  private async writeNow(manifest: string, sidecar: string, objects: ObjectStatus[]) {
    if (!(await exists(manifest))) {
      await this.removeNow(sidecar);
      return false;
    }

    const previousText = await readPreviousText(sidecar);
    const previousDocuments = previousText === undefined ? [] : parseOrNothing(previousText);
    const text = renderSidecar(objects, previousConditionsOf(previousDocuments), {
      nodeName: this.nodeName,
      now: this.now(),
      manifestLabel: displayPath(manifest, this.manifestDir),
    });
    if (text === previousText) return false;

    // Beside the manifest the folder exists already; creating it there would recreate a
    // folder that was just deleted together with its manifest.
    if (this.statusDir !== undefined) {
      await fs.mkdir(path.dirname(sidecar), { recursive: true, mode: 0o755 });
    }
    await writeFileAtomic(sidecar, text);
    return true;
  }

  private async removeNow(sidecar: string): Promise<void> {
    await removeFile(sidecar);
    if (this.statusDir !== undefined) {
      await removeEmptyDirectories(path.dirname(sidecar), this.statusDir);
    }
  }

  private serialized<T>(sidecar: string, task: () => Promise<T>): Promise<T> {
    const before = this.queues.get(sidecar) ?? Promise.resolve();
    const result = before.then(task);
    const settled = result.catch(() => undefined);

    this.queues.set(sidecar, settled);
    void settled.then(() => {
      if (this.queues.get(sidecar) === settled) this.queues.delete(sidecar);
    });
    return result;
  }
}

/**
 * The documents of a sidecar, [] when there is none. A sidecar that does not parse, or a
 * symlink or other non-regular file at `sidecar`, is a BpfdError (`BPFD_E_STATUS`).
 */
export async function readSidecar(sidecar: string): Promise<unknown[]> {
  const text = await readRegularFile(sidecar);
  if (text === undefined) return [];

  try {
    return yaml.loadAll(text).filter((document) => document !== null && document !== undefined);
  } catch (error) {
    throw new BpfdError('BPFD_E_STATUS', `${sidecar}: not valid YAML: ${String(error)}`, {
      cause: error,
    });
  }
}

/** Removes a sidecar file (a symlink there is unlinked, not followed). */
export async function removeSidecar(sidecar: string): Promise<void> {
  if (!isSidecarFileName(sidecar)) {
    throw statusError(`${sidecar}: not a sidecar file name (*.status.yaml or *.status.yml)`);
  }
  await removeFile(sidecar);
}

/** The previous sidecar's text; anything that is not our regular file counts as none. */
async function readPreviousText(sidecar: string): Promise<string | undefined> {
  try {
    return await readRegularFile(sidecar);
  } catch (error) {
    if (error instanceof BpfdError) return undefined;
    throw error;
  }
}

function parseOrNothing(text: string): unknown[] {
  try {
    return yaml.loadAll(text);
  } catch {
    // A damaged sidecar only costs the old timestamps; it is rewritten in full.
    return [];
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return false;
    throw error;
  }
}

async function findSidecars(root: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(root, { withFileTypes: true });
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return [];
    throw error;
  }

  const found: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const entryPath = path.join(root, entry.name);

    // Dirent types come from lstat: symlinked folders are not descended into.
    if (entry.isDirectory()) found.push(...(await findSidecars(entryPath)));
    else if ((entry.isFile() || entry.isSymbolicLink()) && isSidecarFileName(entry.name)) {
      found.push(entryPath);
    }
  }
  return found;
}
