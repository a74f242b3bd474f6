/**
 * The OS side of the watcher: reading the manifest tree, the chokidar (inotify) watch of it, a
 * watch of its parent so a vanished or swapped dir is noticed, and the one function that decides
 * which fs errors are normal in a manifest tree. Nothing here keeps manifest state.
 */
import type { Dirent, FSWatcher as DirectoryWatcher, Stats } from 'node:fs';
import { existsSync, lstatSync, realpathSync, watch as watchDirectory } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { FSWatcher as ChokidarWatcher } from 'chokidar';
import { isManifestFileName, type ParsedFile } from '../api/index.js';
import { ManifestError } from '../errors.js';

/**
 * Deepest folder level below the manifest dir that is read or watched. Symlink cycles are cut
 * where they close; this bound also stops cycles no path comparison can see (bind mounts).
 */
export const MAX_TREE_DEPTH = 16;

const UNREADABLE_CODE = 'BPFD_E_MANIFEST_UNREADABLE';
const STATUS_SIDECAR = /\.status\.ya?ml$/;

/** Errors a manifest tree produces in normal life, with what the operator can do about each. */
const EXPECTED_FS_ERRORS: ReadonlyMap<string, string> = new Map([
  ['ENOENT', 'it vanished while being read (a checkout in progress?); it is read again'],
  ['ENOTDIR', 'a folder on its path was replaced while it was read; it is read again'],
  ['EACCES', 'make it readable by the daemon'],
  ['EPERM', 'make it readable by the daemon'],
  ['ELOOP', 'it is a symlink loop; point the link at a real file'],
  ['EISDIR', 'it is a folder, not a file'],
  ['ENAMETOOLONG', 'shorten its path'],
]);

/** One manifest file found in the tree; `unreadable` when even its type could not be read. */
export interface ListedFile {
  file: string;
  /** The real path of the folder it was found in (a symlinked manifest: the link's folder). */
  folder: string;
  unreadable?: ManifestError;
}

/** A folder whose content is unknown this time; the files last seen in it should be kept. */
export interface UnreadableDir {
  dir: string;
  reason: string;
}

export interface ManifestListing {
  /** Sorted by path. */
  files: ListedFile[];
  unreadableDirs: UnreadableDir[];
  /** The real path of every folder read, the dir itself first: what the watch must cover. */
  realDirs: string[];
}

export type RootStatus = { present: true } | { present: false; reason: string };

/**
 * What a file event was: `write` when a manifest file's content or attributes changed in place
 * (its writer may not be done yet), `entry` for anything else (an entry created, removed or
 * renamed: a file renamed into place is complete).
 */
export type Activity = 'write' | 'entry';

export interface TreeWatchHandlers {
  /**
   * Something below the dir, or the dir's own entry in its parent, changed. `file`, for a
   * write: the real path of its folder joined with its name (`ListedFile.folder` and name).
   */
  onActivity(activity: Activity, file?: string): void;
  /** An fs error that `absorbFsError` does not expect. */
  onError(error: Error): void;
}

/**
 * The one place that decides which fs errors are part of normal life in a manifest tree (a file
 * deleted during a git checkout, one file nobody may read): those come back as a ManifestError
 * about `file`, to be shown as that file's error. Anything else returns undefined and is the
 * caller's to report.
 */
export function absorbFsError(error: unknown, file: string): ManifestError | undefined {
  if (error instanceof ManifestError) return error;

  const code = errnoCode(error);
  const hint = code === undefined ? undefined : EXPECTED_FS_ERRORS.get(code);
  if (hint === undefined) return undefined;

  return new ManifestError(`cannot be read (${code}): ${hint}`, { file }, UNREADABLE_CODE);
}

/** Parses one listed file; an absorbed fs error becomes the file's `fileError`. */
export async function readManifestFile(
  listed: ListedFile,
  parse: (file: string) => Promise<ParsedFile>,
): Promise<{ parsed: ParsedFile; unexpected?: Error }> {
  if (listed.unreadable) return { parsed: unreadableFile(listed.file, listed.unreadable) };

  try {
    return { parsed: await parse(listed.file) };
  } catch (error) {
    const absorbed = absorbFsError(error, listed.file);
    if (absorbed) return { parsed: unreadableFile(listed.file, absorbed) };

    // Still shown on the file, so its last-known-good is kept while the error is reported.
    const unexpected = error instanceof Error ? error : new Error(String(error));
    const message = `cannot be read: ${unexpected.message}`;
    const fileError = new ManifestError(message, { file: listed.file }, UNREADABLE_CODE);
    return { parsed: unreadableFile(listed.file, fileError), unexpected };
  }
}

/**
 * Every manifest file below `root`, following symlinks to files and folders. Hidden entries are
 * skipped at every level, so nothing under `.git/` is ever read.
 */
export async function listManifestFiles(root: string): Promise<ManifestListing> {
  const listing: ManifestListing = { files: [], unreadableDirs: [], realDirs: [] };

  const rootRealPath = await realpath(root).catch((error: unknown) => {
    listing.unreadableDirs.push({ dir: root, reason: describeUnreadable(error, root) });
    return undefined;
  });
  if (rootRealPath === undefined) return listing;

  await walkDirectory(root, root, [rootRealPath], listing);
  listing.files.sort((left, right) => comparePaths(left.file, right.file));
  return listing;
}

/** Whether `dir` is a folder now, and which one (device and inode). */
export async function probeDirectory(
  dir: string,
): Promise<{ identity: string } | { missing: string }> {
  try {
    const stats = await stat(dir);
    if (!stats.isDirectory()) return { missing: `${dir} is not a directory` };
    return { identity: `${stats.dev}:${stats.ino}` };
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { missing: `${dir} does not exist` };
    return { missing: describeUnreadable(error, dir) };
  }
}

/**
 * Watches the manifest tree through chokidar (inotify, never polling) and the dir's own entry
 * in its parent folder. `sync()` re-checks which folder the dir is now and re-opens the watch
 * when it changed: a dir deleted and recreated, or a symlinked dir pointed elsewhere.
 */
export class ManifestTreeWatch {
  readonly #root: string;
  readonly #handlers: TreeWatchHandlers;
  #tree: { identity: string; watcher: ChokidarWatcher } | undefined;
  #anchor: { identity: string; watcher: DirectoryWatcher } | undefined;
  #closed = false;

  constructor(root: string, handlers: TreeWatchHandlers) {
    this.#root = root;
    this.#handlers = handlers;
  }

  /** Brings both watches in line with the dir as it is now; `restart` re-opens the tree watch. */
  async sync(options: { restart: boolean }): Promise<RootStatus> {
    await this.#syncAnchor();

    const probe = await probeDirectory(this.#root);
    if ('missing' in probe) {
      await this.#closeTree();
      return { present: false, reason: probe.missing };
    }

    if (options.restart || this.#tree?.identity !== probe.identity) {
      await this.#replaceTree(probe.identity);
    }
    return { present: true };
  }

  /** Folders chokidar holds a watch on (for tests and diagnostics). */
  watchedDirs(): string[] {
    return this.#tree ? Object.keys(this.#tree.watcher.getWatched()) : [];
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closeAnchor();
    await this.#closeTree();
  }

  // chokidar shares one inotify watch per path between its instances, so the old watch must be
  // gone before the new one opens, or the new one would inherit a watch on the old folder. An
  // event between the two is not lost: the caller reads the whole tree after sync().
  async #replaceTree(identity: string): Promise<void> {
    await this.#closeTree();
    if (this.#closed) return;

    const watcher = await openChokidar(this.#root, this.#handlers);
    if (this.#closed) {
      await watcher.close();
      return;
    }
    this.#tree = { identity, watcher };
  }

  async #closeTree(): Promise<void> {
    const previous = this.#tree;
    this.#tree = undefined;
    await previous?.watcher.close();
  }

  async #syncAnchor(): Promise<void> {
    const parent = path.dirname(this.#root);
    const probe = await probeDirectory(parent);
    if ('missing' in probe) return this.#closeAnchor();
    if (this.#closed || this.#anchor?.identity === probe.identity) return;

    this.#closeAnchor();
    const watcher = this.#watchParent(parent);
    if (watcher) this.#anchor = { identity: probe.identity, watcher };
  }

  #watchParent(parent: string): DirectoryWatcher | undefined {
    const entryName = path.basename(this.#root);
    const onEntryEvent = (_event: string, name: string | null) => {
      if (name === null || name === entryName) this.#handlers.onActivity('entry');
    };

    try {
      const watcher = watchDirectory(parent, { persistent: true }, onEntryEvent);
      // The parent went away or became unwatchable: the next sync re-opens it when it can.
      watcher.on('error', () => {
        this.#closeAnchor();
        this.#handlers.onActivity('entry');
      });
      return watcher;
    } catch (error) {
      if (!absorbFsError(error, parent)) this.#handlers.onError(asError(error));
      return undefined;
    }
  }

  #closeAnchor(): void {
    this.#anchor?.watcher.close();
    this.#anchor = undefined;
  }
}

// LIMITATION: chokidar lets the CHOKIDAR_USEPOLLING environment variable force polling over
// these options; the daemon's unit must not set it.
async function openChokidar(root: string, handlers: TreeWatchHandlers) {
  const watcher = new ChokidarWatcher({
    ignoreInitial: true,
    followSymlinks: true,
    usePolling: false,
    // Any event means "read again"; holding an unlink back 100 ms to pair it with an add only
    // delays that.
    atomic: false,
    ignorePermissionErrors: true,
    depth: MAX_TREE_DEPTH,
    ignored: ignoredBelow(root),
  });

  watcher.on('all', () => handlers.onActivity('entry'));
  // chokidar's own events leave out what it cannot tell apart, such as a symlinked folder
  // re-pointed by rename (`ln -sfn`), and drop repeats; the raw inotify events it receives show
  // both, and which manifest files are being written in place.
  watcher.on('raw', (event: string, name: string | null, details: unknown) => {
    const watchedPath = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
    if (name === null || typeof watchedPath !== 'string') {
      handlers.onActivity('entry');
      return;
    }
    const watcherOf = watcherKind(name, watchedPath);
    const activity = rawActivity(event, name, watcherOf);
    if (!activity) return;
    const [folder, entry] =
      watcherOf === 'folder'
        ? [watchedPath, path.basename(name)]
        : [path.dirname(watchedPath), path.basename(watchedPath)];
    handlers.onActivity(activity, path.join(realPathOr(folder), entry));
  });
  watcher.on('error', (error) => {
    if (absorbFsError(error, root)) handlers.onActivity('entry');
    else handlers.onError(asError(error));
  });

  const ready = new Promise<void>((resolve) => watcher.once('ready', resolve));
  watcher.add(root);
  await ready;
  return watcher;
}

/**
 * Which watch a raw event came from: the one on a folder (naming an entry in it), or the one on
 * a file itself, which is a manifest or a symlink to one.
 */
export type RawWatcher = 'folder' | 'file' | 'linked-file';

function realPathOr(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

// A link whose target is gone counts as a plain file: nothing is being written through it.
function watcherKind(name: string, watchedPath: string): RawWatcher {
  if (path.basename(watchedPath) !== path.basename(name)) return 'folder';
  try {
    const linked = lstatSync(watchedPath).isSymbolicLink();
    return linked && existsSync(watchedPath) ? 'linked-file' : 'file';
  } catch {
    return 'file';
  }
}

/**
 * A raw event; undefined to ignore. Content written in place shows as a `change` on the
 * folder's watch; a `change` on a file's own watch is also the old file losing its name when
 * another is renamed over it, so it counts as a write only for a symlinked manifest, whose
 * target lives in a folder that may not be watched.
 */
export function rawActivity(
  event: string,
  name: string | null,
  watcher: RawWatcher,
): Activity | undefined {
  if (name === null) return 'entry';
  const base = path.basename(name);
  // Hidden names are editors' and the status writer's temp files; sidecars are the daemon's own.
  if (base.startsWith('.') || STATUS_SIDECAR.test(base)) return undefined;
  if (event !== 'change' || !isManifestFileName(base) || watcher === 'file') return 'entry';
  return 'write';
}

/**
 * chokidar's filter: hidden entries at any level below `root` (so `.git/` is never descended
 * into), files that are not manifests, and links back to a folder they sit in (chokidar would
 * follow those down to MAX_TREE_DEPTH, multiplying watches). Other folders and links pass.
 */
export function ignoredBelow(root: string): (candidate: string, stats?: Stats) => boolean {
  return (candidate, stats) => {
    const relative = path.relative(root, candidate);
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return false;
    if (relative.split(path.sep).some((segment) => segment.startsWith('.'))) return true;
    if (stats?.isSymbolicLink()) return linksBackToAncestor(root, candidate);
    return stats?.isFile() === true && !isManifestFileName(relative);
  };
}

// Synchronous because chokidar's filter is; it runs only for symlinks, which are few.
function linksBackToAncestor(root: string, link: string): boolean {
  try {
    const target = realpathSync(link);
    for (let dir = path.dirname(link); dir.length >= root.length; dir = path.dirname(dir)) {
      if (realpathSync(dir) === target) return true;
      if (dir === root) break;
    }
    return false;
  } catch {
    return false;
  }
}

async function walkDirectory(
  root: string,
  dir: string,
  realAncestors: string[],
  listing: ManifestListing,
): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    listing.unreadableDirs.push({ dir, reason: describeUnreadable(error, dir) });
    return;
  }

  listing.realDirs.push(realAncestors[realAncestors.length - 1]);
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    await visitEntry(root, path.join(dir, entry.name), entry, realAncestors, listing);
  }
}

async function visitEntry(
  root: string,
  entryPath: string,
  entry: Dirent,
  realAncestors: string[],
  listing: ManifestListing,
): Promise<void> {
  const target = entry.isSymbolicLink() ? await followLink(entryPath) : direntTarget(entry);
  const relative = path.relative(root, entryPath);

  if (target.kind === 'file' || target.kind === 'unreadable') {
    if (!isManifestFileName(relative)) return;
    const unreadable = target.kind === 'unreadable' ? target.error : undefined;
    listing.files.push({
      file: entryPath,
      folder: realAncestors[realAncestors.length - 1],
      unreadable,
    });
    return;
  }
  if (target.kind !== 'dir') return;

  // A link back to a folder we are already inside would never end: cut it there.
  const parentRealPath = realAncestors[realAncestors.length - 1];
  const realPath = target.realPath ?? path.join(parentRealPath, entry.name);
  if (realAncestors.includes(realPath) || realAncestors.length > MAX_TREE_DEPTH) return;

  await walkDirectory(root, entryPath, [...realAncestors, realPath], listing);
}

type EntryTarget =
  | { kind: 'file' }
  | { kind: 'dir'; realPath?: string }
  | { kind: 'unreadable'; error: ManifestError }
  | { kind: 'other' };

function direntTarget(entry: Dirent): EntryTarget {
  if (entry.isFile()) return { kind: 'file' };
  if (entry.isDirectory()) return { kind: 'dir' };
  return { kind: 'other' };
}

async function followLink(linkPath: string): Promise<EntryTarget> {
  try {
    const stats = await stat(linkPath);
    if (stats.isFile()) return { kind: 'file' };
    if (stats.isDirectory()) return { kind: 'dir', realPath: await realpath(linkPath) };
    return { kind: 'other' };
  } catch (error) {
    // A dangling or looping link with a manifest name is a file that cannot be read.
    const unreadable = absorbFsError(error, linkPath);
    if (!unreadable) throw error;
    return { kind: 'unreadable', error: unreadable };
  }
}

function describeUnreadable(error: unknown, file: string): string {
  const absorbed = absorbFsError(error, file);
  if (!absorbed) throw error;
  return absorbed.message;
}

function unreadableFile(file: string, fileError: ManifestError): ParsedFile {
  return { file, documents: [], fileError };
}

function errnoCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Plain code-unit order: the same on every machine, whatever its locale. */
export function comparePaths(left: string, right: string): number {
  if (left === right) return 0;
  return left < right ? -1 : 1;
}
