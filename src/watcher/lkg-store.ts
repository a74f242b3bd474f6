/**
 * Last-known-good on disk, so that it outlives the process: a daemon restarted (crash, upgrade,
 * reboot) while a manifest is broken keeps what that manifest last applied, instead of
 * unloading it. One JSON file per manifest, named by a hash of its path, holding the objects
 * the manifest last made effective. Written atomically, only when they change.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type { EffectiveDocument, FileView } from './types.js';

interface StoredFile {
  file: string;
  effective: Array<Pick<EffectiveDocument, 'index' | 'object'>>;
}

export class LastKnownGoodStore {
  readonly #dir: string;
  readonly #readOnly: boolean;
  /** What each file's entry on disk holds now, as written, to skip unchanged writes. */
  readonly #written = new Map<string, string>();

  constructor(dir: string, options: { readOnly?: boolean } = {}) {
    this.#dir = dir;
    this.#readOnly = options.readOnly ?? false;
  }

  /** Every stored manifest, as views whose objects are all retained for `reason`. */
  loadAll(reason: string): FileView[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.#dir).filter((name) => name.endsWith('.json'));
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      const stored = this.#read(path.join(this.#dir, name));
      return stored ? [this.#asView(stored, reason)] : [];
    });
  }

  /** The stored view of one manifest, or undefined when none was stored. */
  load(file: string): FileView | undefined {
    const stored = this.#read(this.#entryPath(file));
    return stored?.file === file ? this.#asView(stored, undefined) : undefined;
  }

  /** Records what the view makes effective now (retained copies included: still the last good). */
  save(view: FileView): void {
    if (this.#readOnly) return;
    const stored: StoredFile = {
      file: view.file,
      effective: view.effective.map(({ index, object }) => ({ index, object })),
    };
    const text = JSON.stringify(stored);
    if (this.#written.get(view.file) === text) return;

    fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    const target = this.#entryPath(view.file);
    const temporary = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, text, { mode: 0o600 });
    fs.renameSync(temporary, target);
    this.#written.set(view.file, text);
  }

  /** Forgets every manifest not in `present` (removed while no daemon ran). */
  prune(present: Set<string>): void {
    if (this.#readOnly) return;
    for (const view of this.loadAll('')) {
      if (!present.has(view.file)) this.remove(view.file);
    }
  }

  /** Forgets a manifest that was removed. */
  remove(file: string): void {
    if (this.#readOnly) return;
    fs.rmSync(this.#entryPath(file), { force: true });
    this.#written.delete(file);
  }

  #entryPath(file: string): string {
    const hash = crypto.createHash('sha256').update(file).digest('hex').slice(0, 32);
    return path.join(this.#dir, `${hash}.json`);
  }

  #read(entry: string): StoredFile | undefined {
    try {
      const stored = JSON.parse(fs.readFileSync(entry, 'utf8')) as StoredFile;
      if (typeof stored.file !== 'string' || !Array.isArray(stored.effective)) return undefined;
      this.#written.set(stored.file, JSON.stringify(stored));
      return stored;
    } catch {
      return undefined;
    }
  }

  #asView(stored: StoredFile, reason: string | undefined): FileView {
    const effective = stored.effective.map(({ index, object }) => ({
      file: stored.file,
      index,
      object,
      ...(reason ? { retained: { reason } } : {}),
    }));
    return { file: stored.file, parsed: { file: stored.file, documents: [] }, effective };
  }
}
