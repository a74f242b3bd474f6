import type { ParsedFile, ProgramObject } from '../api/index.js';

/** One object the reconciler should apply, and where it comes from. */
export interface EffectiveDocument {
  /** Absolute path of the manifest file. */
  file: string;
  /** Index of the document in that file (for a retained copy: where its broken text is now). */
  index: number;
  object: ProgramObject;
  /**
   * Set when this is a last-known-good copy, kept because the current text cannot be used;
   * `reason` is the current error message.
   */
  retained?: { reason: string };
}

/** Everything the watcher knows about one manifest file. */
export interface FileView {
  /** Absolute path. */
  file: string;
  /** The latest parse attempt, errors included, so status can report them. */
  parsed: ParsedFile;
  /** What the reconciler should apply for this file. */
  effective: EffectiveDocument[];
}

export interface ManifestSnapshot {
  /** The watched dir, as an absolute path. */
  dir: string;
  /** Sorted by path. */
  files: FileView[];
  /** True while the dir is absent or unreadable; `files` then holds the last views of it. */
  dirMissing: boolean;
}

/** The pino-style subset the watcher logs through: fields first, then the message. */
export interface WatcherLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface ManifestWatcherOptions {
  dir: string;
  /** Quiet time after the last file event before the dir is re-read. Default 5. */
  debounceMs?: number;
  /** Parser of one manifest file. Default: the real one from `src/api`. */
  parse?: (file: string) => Promise<ParsedFile>;
  logger?: WatcherLogger;
  /**
   * Where last-known-good copies are kept across restarts (the daemon: `<stateDir>/last-known-good`).
   * Without it, last-known-good lives in memory only.
   */
  lastKnownGoodDir?: string;
  /** Read the kept copies but never write them (`bpfd plan`). */
  lastKnownGoodReadOnly?: boolean;
}

export interface ManifestWatcherEvents {
  /** The view changed; emitted at most once per debounced burst or rescan. */
  change: [snapshot: ManifestSnapshot];
  /** An fs error that a manifest tree does not normally produce (EIO, ENOSPC, EMFILE...). */
  error: [error: Error];
}
