/**
 * ManifestWatcher: the desired state as files say it, kept current while the files change.
 *
 * How it behaves, and the decisions behind it:
 * - The dir is watched recursively through chokidar (inotify; no polling when idle). Only files
 *   that `isManifestFileName` accepts count; hidden files and folders are neither read nor
 *   watched, so a `.git/` with thousands of objects costs nothing.
 * - Events only say "something moved". Once a burst has been quiet for `debounceMs` (a git pull,
 *   a checkout, an editor's write-and-rename), every manifest file is read again. A file caught
 *   half-written is read again on its next write event; meanwhile last-known-good covers it.
 * - 'change' is emitted when a read finds a view different from the current one: at most once
 *   per burst, and also after `rescan()` when that found a difference, so a listener of
 *   'change' sees every change exactly once. A burst that changed nothing emits nothing.
 * - Last-known-good per file: see `last-known-good.ts`. Only a removed file, or a document
 *   removed from a file that parses, takes an object away.
 * - The dir itself may vanish (a symlinked dir being swapped, a role re-creating it). Unloading
 *   everything during a swap is never what an operator wants, so while it is missing every
 *   file's last objects stay effective (retained, with the reason) and `dirMissing` is true.
 *   Its parent is watched, and a retry with growing delays runs only while it is missing;
 *   when it is back, it is read and watched again and 'change' is emitted.
 * - Symlinks to files and folders inside the dir are followed (config management links files
 *   into place). A link back to a folder it sits in is not followed; nothing is read deeper
 *   than MAX_TREE_DEPTH levels. A dangling link with a manifest name is a file that cannot be
 *   read: it keeps its last objects, like a subfolder that cannot be listed.
 * - Fs errors that manifest trees produce in normal life (ENOENT mid-checkout, EACCES on one
 *   file) become that file's `fileError`. Only other ones are emitted as 'error'; without an
 *   'error' listener they are logged instead of ending the process.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { parseManifestFile, type ParsedFile } from '../api/index.js';
import {
  ManifestTreeWatch,
  comparePaths,
  listManifestFiles,
  readManifestFile,
  type ListedFile,
  type RootStatus,
  type UnreadableDir,
} from './fs-handler.js';
import { buildFileView, holdFileView, snapshotFingerprint } from './last-known-good.js';
import { LastKnownGoodStore } from './lkg-store.js';
import { BurstDebounce, RetryBackoff } from './timers.js';
import type {
  FileView,
  ManifestSnapshot,
  ManifestWatcherEvents,
  ManifestWatcherOptions,
  WatcherLogger,
} from './types.js';

export type {
  EffectiveDocument,
  FileView,
  ManifestSnapshot,
  ManifestWatcherEvents,
  ManifestWatcherOptions,
  WatcherLogger,
} from './types.js';

const DEFAULT_DEBOUNCE_MS = 150;
/** A burst that never goes quiet is still read after this long. */
const MAX_BURST_MS = 10_000;
const DIR_RETRY_INITIAL_MS = 250;
const DIR_RETRY_MAX_MS = 30_000;
/** Files parsed at once; enough to hide disk latency, few enough to stay clear of EMFILE. */
const READ_CONCURRENCY = 8;

const silentLogger: WatcherLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export class ManifestWatcher extends EventEmitter<ManifestWatcherEvents> {
  readonly #dir: string;
  readonly #parse: (file: string) => Promise<ParsedFile>;
  readonly #logger: WatcherLogger;
  readonly #tree: ManifestTreeWatch;
  readonly #burst: BurstDebounce;
  readonly #dirRetry: RetryBackoff;
  readonly #kept: LastKnownGoodStore | undefined;
  #keptPruned = false;
  #snapshot: ManifestSnapshot;
  #fingerprint: string | undefined;
  #started: Promise<ManifestSnapshot> | undefined;
  #pendingScan: { restart: boolean; done: Promise<ManifestSnapshot> } | undefined;
  #lastScan: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: ManifestWatcherOptions) {
    super();
    this.#dir = path.resolve(options.dir);
    this.#parse = options.parse ?? parseManifestFile;
    this.#logger = options.logger ?? silentLogger;
    this.#snapshot = { dir: this.#dir, files: [], dirMissing: false };
    this.#kept = options.lastKnownGoodDir
      ? new LastKnownGoodStore(options.lastKnownGoodDir, {
          readOnly: options.lastKnownGoodReadOnly,
        })
      : undefined;

    const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#burst = new BurstDebounce(debounceMs, MAX_BURST_MS, () => this.#scanInBackground());
    this.#dirRetry = new RetryBackoff(DIR_RETRY_INITIAL_MS, DIR_RETRY_MAX_MS, () =>
      this.#scanInBackground(),
    );
    this.#tree = new ManifestTreeWatch(this.#dir, {
      onActivity: () => this.#burst.trigger(),
      onError: (error) => this.#reportError(error),
    });
  }

  /** Reads the whole dir and starts watching it; resolves with the first view. */
  start(): Promise<ManifestSnapshot> {
    this.#started ??= this.#requestScan(false);
    return this.#started;
  }

  /** The current view. Treat it as read-only: the watcher shares it with every caller. */
  snapshot(): ManifestSnapshot {
    return this.#snapshot;
  }

  /**
   * Reads every file again now and re-opens the watch, which also repairs a watch that missed
   * an event. Emits 'change' as well when the view changed.
   */
  rescan(): Promise<ManifestSnapshot> {
    return this.#requestScan(true);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#burst.cancel();
    this.#dirRetry.disarm();
    await this.#tree.close();
    await this.#lastScan;
  }

  // Reads never overlap; requests made while one runs share the single read queued after it.
  #requestScan(restart: boolean): Promise<ManifestSnapshot> {
    if (this.#closed) return Promise.resolve(this.#snapshot);
    if (this.#pendingScan) {
      this.#pendingScan.restart ||= restart;
      return this.#pendingScan.done;
    }

    const pending = { restart, done: Promise.resolve(this.#snapshot) };
    pending.done = this.#lastScan.then(() => {
      this.#pendingScan = undefined;
      return this.#scan(pending.restart);
    });
    this.#pendingScan = pending;
    this.#lastScan = pending.done.catch(() => undefined);
    return pending.done;
  }

  #scanInBackground(): void {
    this.#requestScan(false).catch((error: unknown) => this.#reportError(asError(error)));
  }

  async #scan(restart: boolean): Promise<ManifestSnapshot> {
    if (this.#closed) return this.#snapshot;

    const root = await this.#tree.sync({ restart });
    this.#trackDirPresence(root);

    const next = root.present
      ? await this.#readTree()
      : this.#holdEverything(`${root.reason}; keeping the objects last read from it`);
    if (root.present) this.#keep(next);
    return this.#publish(next);
  }

  async #readTree(): Promise<ManifestSnapshot> {
    const listing = await listManifestFiles(this.#dir);
    const previous = new Map(this.#snapshot.files.map((view) => [view.file, view]));

    const read = await mapConcurrently(listing.files, READ_CONCURRENCY, (listed) =>
      this.#readFile(listed, previous.get(listed.file)),
    );
    const listedFiles = new Set(listing.files.map((listed) => listed.file));
    const held = holdFilesIn(listing.unreadableDirs, previous, listedFiles);

    const files = [...read, ...held].sort((left, right) => comparePaths(left.file, right.file));
    return { dir: this.#dir, files, dirMissing: false };
  }

  async #readFile(listed: ListedFile, previous: FileView | undefined): Promise<FileView> {
    const { parsed, unexpected } = await readManifestFile(listed, this.#parse);
    if (unexpected) this.#reportError(unexpected);

    // First read since start: the last good copy is the one kept on disk, if any.
    const view = buildFileView(parsed, previous ?? this.#kept?.load(listed.file));
    this.#logNewProblems(view, previous);
    return view;
  }

  #holdEverything(reason: string): ManifestSnapshot {
    // Missing at start: what the files applied before the restart is on disk.
    const files =
      this.#snapshot.files.length > 0 || !this.#kept
        ? this.#snapshot.files.map((view) => holdFileView(view, reason))
        : this.#kept.loadAll(reason);
    files.sort((left, right) => comparePaths(left.file, right.file));
    return { dir: this.#dir, files, dirMissing: true };
  }

  /** Keeps each file's effective objects on disk and forgets files that were removed. */
  #keep(next: ManifestSnapshot): void {
    if (!this.#kept) return;
    try {
      const present = new Set(next.files.map((view) => view.file));
      if (!this.#keptPruned) this.#kept.prune(present);
      this.#keptPruned = true;
      for (const view of this.#snapshot.files) {
        if (!present.has(view.file)) this.#kept.remove(view.file);
      }
      for (const view of next.files) this.#kept.save(view);
    } catch (error) {
      // A full or read-only state dir costs the restart guarantee, not the daemon.
      this.#logger.warn({ err: asError(error).message }, 'cannot keep last-known-good copies');
    }
  }

  // The retry runs only while the dir is missing; the dir's parent is watched all along.
  #trackDirPresence(root: RootStatus): void {
    const wasMissing = this.#snapshot.dirMissing;
    if (root.present) {
      this.#dirRetry.disarm();
      if (wasMissing) this.#logger.info({ dir: this.#dir }, 'manifest dir is back');
      return;
    }

    this.#dirRetry.arm();
    if (wasMissing) return;
    const fields = { dir: this.#dir, reason: root.reason };
    this.#logger.warn(fields, 'manifest dir missing; keeping the objects last read from it');
  }

  #publish(next: ManifestSnapshot): ManifestSnapshot {
    if (this.#closed) return this.#snapshot;

    const fingerprint = snapshotFingerprint(next);
    const changed = this.#fingerprint !== undefined && fingerprint !== this.#fingerprint;
    this.#snapshot = next;
    this.#fingerprint = fingerprint;

    if (changed) {
      this.#logger.debug({ dir: this.#dir, files: next.files.length }, 'manifest view changed');
      this.emit('change', next);
    }
    return next;
  }

  #logNewProblems(view: FileView, previous: FileView | undefined): void {
    const problem = describeProblems(view);
    if (problem === undefined || problem === (previous && describeProblems(previous))) return;

    const retained = view.effective.filter((effective) => effective.retained).length;
    this.#logger.warn({ file: view.file, problem, retained }, 'manifest file has errors');
  }

  #reportError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else this.#logger.error({ dir: this.#dir, err: error }, 'manifest watch failed');
  }
}

function holdFilesIn(
  unreadableDirs: UnreadableDir[],
  previous: Map<string, FileView>,
  listedFiles: Set<string>,
): FileView[] {
  const held = new Map<string, FileView>();
  for (const { dir, reason } of unreadableDirs) {
    for (const view of previous.values()) {
      const inside = view.file.startsWith(dir + path.sep);
      if (inside && !listedFiles.has(view.file)) held.set(view.file, holdFileView(view, reason));
    }
  }
  return [...held.values()];
}

function describeProblems(view: FileView): string | undefined {
  if (view.parsed.fileError) return view.parsed.fileError.message;

  const messages = view.parsed.documents.flatMap((document) =>
    document.errors.map((error) => error.message),
  );
  return messages.length > 0 ? messages.join('; ') : undefined;
}

async function mapConcurrently<Item, Result>(
  items: Item[],
  limit: number,
  work: (item: Item) => Promise<Result>,
): Promise<Result[]> {
  const results = new Array<Result>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const position = next++;
      results[position] = await work(items[position]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
