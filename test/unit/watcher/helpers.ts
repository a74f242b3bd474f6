import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseManifestFile, type ParsedFile } from '../../../src/api/index.js';
import {
  ManifestWatcher,
  type ManifestSnapshot,
  type ManifestWatcherOptions,
} from '../../../src/watcher/index.js';

/** The parser behind the watcher by default, for tests that wrap it. */
export const testParse: (file: string) => Promise<ParsedFile> = parseManifestFile;

/** Upper bound for any awaited event; reaching it fails the test, it never makes one pass. */
export const EVENT_TIMEOUT_MS = 15_000;

export async function makeTempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'bpfd-watcher-'));
}

export async function removeTempDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

export function createWatcher(
  dir: string,
  options: Partial<ManifestWatcherOptions> = {},
): ManifestWatcher {
  return new ManifestWatcher({ dir, debounceMs: 50, ...options });
}

/** A valid XdpProgram (or TcProgram) document. */
export function xdpProgram(name: string, priority = 10, kind = 'XdpProgram'): string {
  const direction = kind === 'TcProgram' ? '  direction: ingress\n' : '';
  return [
    'apiVersion: bpfd.io/v1alpha1',
    `kind: ${kind}`,
    'metadata:',
    `  name: ${name}`,
    'spec:',
    '  sectionname: pass',
    '  nodeselector: {}',
    '  interfaceselector:',
    '    primarynodeinterface: true',
    `  priority: ${priority}`,
    direction + '  bytecode:',
    '    path: /opt/bpf/xdp_pass.o',
    '',
  ].join('\n');
}

export function multiDocument(...documents: string[]): string {
  return documents.join('---\n');
}

/** `kind/name` of every effective object, `+retained` when it is a kept copy; sorted. */
export function effectiveNames(snapshot: ManifestSnapshot): string[] {
  return snapshot.files
    .flatMap((view) => view.effective)
    .map(({ object, retained }) => {
      const identity = `${object.kind}/${object.metadata.name}`;
      return retained ? `${identity}+retained` : identity;
    })
    .sort();
}

export function effectivePriorities(snapshot: ManifestSnapshot): Record<string, unknown> {
  const priorities: Record<string, unknown> = {};
  for (const { object } of snapshot.files.flatMap((view) => view.effective)) {
    priorities[object.metadata.name] = 'priority' in object.spec ? object.spec.priority : undefined;
  }
  return priorities;
}

export function fileNames(snapshot: ManifestSnapshot): string[] {
  return snapshot.files.map((view) => path.relative(snapshot.dir, view.file));
}

/** Every 'change' a watcher emits, in order, with a way to await the next matching one. */
export class ChangeRecorder {
  readonly changes: ManifestSnapshot[] = [];
  readonly errors: Error[] = [];
  #waiters: Array<{ test: (snapshot: ManifestSnapshot) => boolean; resolve: () => void }> = [];

  constructor(watcher: ManifestWatcher) {
    watcher.on('change', (snapshot) => {
      this.changes.push(snapshot);
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.test(snapshot)) return true;
        waiter.resolve();
        return false;
      });
    });
    watcher.on('error', (error) => this.errors.push(error));
  }

  /** Resolves with the first change from now on that satisfies `test`. */
  next(
    description: string,
    test: (snapshot: ManifestSnapshot) => boolean = () => true,
  ): Promise<ManifestSnapshot> {
    const from = this.changes.length;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const seen = this.changes.slice(from).map((snapshot) => effectiveNames(snapshot));
        reject(new Error(`no change with ${description}; saw ${JSON.stringify(seen)}`));
      }, EVENT_TIMEOUT_MS);
      this.#waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.changes[this.changes.length - 1]);
        },
      });
    });
  }
}
