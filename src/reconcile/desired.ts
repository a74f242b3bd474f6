/**
 * From effective manifest documents to the programs this node should run: node selection,
 * bytecode resolution, interface resolution. Whatever stops an object is kept as an outcome
 * for its status instead of an exception.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  decodeGlobalData,
  markDuplicates,
  proceedOnMask,
  type ParsedDocument,
  type ProgramObject,
} from '../api/index.js';
import type { PullPolicy } from '../bytecode/index.js';
import type { Config } from '../config/index.js';
import {
  BPF_PROG_TYPE_SCHED_CLS,
  BPF_PROG_TYPE_TRACEPOINT,
  BPF_PROG_TYPE_XDP,
  interfaceIndex,
  pinName,
  primaryInterface,
  type Hook,
} from '../kernel/index.js';
import type { EffectiveDocument } from '../watcher/index.js';
import { describeSelector, matchesNodeSelector } from './selector.js';
import { isSettled, statSignature } from '../stat-signature.js';
import { StrictModesPass } from './strict-modes.js';
import type { DesiredProgram, KindShort, ObjectRef, ObservedProgram } from './types.js';

/** Why an object is not among the desired programs. */
export type Blocker =
  | { reason: 'notSelected'; message: string }
  | { reason: 'bytecode'; message: string }
  | { reason: 'waitingForInterface'; message: string; ifname?: string }
  | { reason: 'duplicate'; message: string }
  | { reason: 'unsafe'; message: string }
  | { reason: 'loadFailed'; message: string; bytecode: boolean; pinDir: string };

export interface DesiredObject {
  ref: ObjectRef;
  kindShort: KindShort;
  /** What to keep loaded; with a blocker too when the program waits for its interface. */
  program?: DesiredProgram;
  blocker?: Blocker;
}

const KIND_SHORT: Record<ObjectRef['kind'], KindShort> = {
  XdpProgram: 'xdp',
  TcProgram: 'tc',
  TracepointProgram: 'tracepoint',
};

const PROGRAM_TYPE: Record<KindShort, number> = {
  xdp: BPF_PROG_TYPE_XDP,
  tc: BPF_PROG_TYPE_SCHED_CLS,
  tracepoint: BPF_PROG_TYPE_TRACEPOINT,
};

/** Hashing bytecode files is the costly part of a no-change reconcile: hash on change only. */
const digests = new Map<string, { signature: string; digest: string }>();

/** Makes the next reconcile hash every bytecode file again (the resync does). */
export function forgetBytecodeDigests(): void {
  digests.clear();
}

/**
 * The SHA-256 of an object file, hashed again whenever its stat signature moved (a rewrite in
 * place that restores the mtime still moves the ctime) or was not settled yet.
 */
function bytecodeDigest(objectPath: string): string {
  const readAt = Date.now();
  const stat = fs.statSync(objectPath);
  if (!stat.isFile()) throw new Error(`${objectPath} is not a regular file`);
  const signature = statSignature(stat);
  const cached = digests.get(objectPath);
  if (cached?.signature === signature) return cached.digest;

  const digest =
    'sha256:' + crypto.createHash('sha256').update(fs.readFileSync(objectPath)).digest('hex');
  if (isSettled(stat, readAt)) digests.set(objectPath, { signature, digest });
  else digests.delete(objectPath);
  return digest;
}

function isUnder(file: string, root: string): boolean {
  const relative = path.relative(root, file);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** Resolves `bytecode.image` to an object file in the image cache (src/bytecode ImageStore). */
export interface ImageResolver {
  resolve(request: {
    url: string;
    pullPolicy?: PullPolicy;
    pullSecret?: { name: string; namespace: string };
  }): Promise<{
    objectPath: string;
    objectDigest: string;
    manifestDigest: string;
    reference: string;
  }>;
}

export interface DesiredContext {
  config: Config;
  labels: Record<string, string>;
  images?: ImageResolver;
  /** The loaded version of a program, if any (kept running when its bytecode cannot be had). */
  running(key: string): ObservedProgram | undefined;
  /** A load of this exact version that failed for good before (verifier, bad object). */
  failedLoad?(pinDir: string): { message: string; bytecode: boolean } | undefined;
}

interface ResolvedBytecode {
  objectPath: string;
  digest: string;
  image?: { reference: string; manifestDigest: string };
}

/**
 * What one pass over the objects looks up on this node, each thing once: a thousand objects
 * built from one object file in one manifest dir cost one `realpath` and one `stat` of it, not
 * a thousand. A new pass (a new reconcile) looks everything up again.
 */
class NodeLookups {
  readonly strictModes: StrictModesPass;
  readonly #realPaths = new Map<string, { path: string } | { error: unknown }>();
  readonly #digests = new Map<string, string>();
  readonly #ifindexes = new Map<string, number | undefined>();
  #primary: { ifname: string | undefined } | undefined;

  constructor(config: Config) {
    this.strictModes = new StrictModesPass(config.manifestDir);
  }

  realPath(file: string): string {
    let known = this.#realPaths.get(file);
    if (!known) {
      try {
        known = { path: fs.realpathSync(file) };
      } catch (error) {
        known = { error };
      }
      this.#realPaths.set(file, known);
    }
    if ('error' in known) throw known.error;
    return known.path;
  }

  digest(realPath: string): string {
    let digest = this.#digests.get(realPath);
    if (digest === undefined) {
      digest = bytecodeDigest(realPath);
      this.#digests.set(realPath, digest);
    }
    return digest;
  }

  interfaceIndex(ifname: string): number | undefined {
    if (!this.#ifindexes.has(ifname)) this.#ifindexes.set(ifname, interfaceIndex(ifname));
    return this.#ifindexes.get(ifname);
  }

  primaryInterface(): string | undefined {
    this.#primary ??= { ifname: primaryInterface() };
    return this.#primary.ifname;
  }
}

/**
 * `bytecode.path` as a file on this node. A relative path is taken from the manifest's own
 * directory, so a repo can carry objects beside its manifests.
 */
function resolveBytecodePath(
  bytecodePath: string,
  ref: ObjectRef,
  config: Config,
  lookups: NodeLookups,
): ResolvedBytecode {
  // From where the manifest really is: in a symlinked release dir, `../objects` stays inside it.
  const objectPath = path.resolve(lookups.realPath(path.dirname(ref.file)), bytecodePath);
  let realPath: string;
  try {
    realPath = lookups.realPath(objectPath);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      `spec.bytecode.path ${objectPath}: ${missing ? 'no such file' : (err as Error).message}`,
    );
  }
  if (
    config.bytecodeRoots.length > 0 &&
    !config.bytecodeRoots.some((root) => isUnder(realPath, root))
  ) {
    const via = realPath === objectPath ? '' : ` (it resolves to ${realPath})`;
    throw new Error(
      `spec.bytecode.path ${objectPath}${via} is outside the allowed bytecodeRoots ` +
        `(${config.bytecodeRoots.join(', ')})`,
    );
  }
  return { objectPath: realPath, digest: lookups.digest(realPath) };
}

async function resolveBytecode(
  object: ProgramObject,
  ref: ObjectRef,
  context: DesiredContext,
  lookups: NodeLookups,
): Promise<ResolvedBytecode> {
  const bytecode = object.spec.bytecode;
  if (bytecode.path !== undefined) {
    return resolveBytecodePath(bytecode.path, ref, context.config, lookups);
  }
  if (!bytecode.image) throw new Error('spec.bytecode needs path or image');
  if (!context.images) throw new Error('spec.bytecode.image: no image store configured');

  const resolved = await context.images.resolve({
    url: bytecode.image.url,
    pullPolicy: bytecode.image.imagepullpolicy,
    pullSecret: bytecode.image.imagepullsecret,
  });
  return {
    objectPath: resolved.objectPath,
    digest: resolved.objectDigest,
    image: { reference: resolved.reference, manifestDigest: resolved.manifestDigest },
  };
}

function specHash(parts: unknown): string {
  return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

interface ProgramVersion {
  digest: string;
  globalData: Map<string, Buffer>;
  hash: string;
}

/**
 * Per manifest object (the watcher hands out the same object until its file changes): its
 * decoded global data and spec hash, for the bytecode digest they were computed with.
 */
const versions = new WeakMap<ProgramObject, ProgramVersion>();

function programVersion(
  object: ProgramObject,
  digest: string,
  tracepoint: string | undefined,
): ProgramVersion {
  const known = versions.get(object);
  if (known?.digest === digest) return known;

  const globalData = decodeGlobalData(object.spec.globaldata);
  const hash = specHash({
    kind: object.kind,
    digest,
    section: object.spec.sectionname,
    globals: [...globalData].map(([name, bytes]) => [name, bytes.toString('base64')]).sort(),
    tracepoint,
  });
  const version = { digest, globalData, hash };
  versions.set(object, version);
  return version;
}

function resolveHook(
  object: ProgramObject,
  kindShort: KindShort,
  lookups: NodeLookups,
): Hook | Blocker {
  const spec = object.spec as {
    interfaceselector: { interface?: string; primarynodeinterface?: boolean };
    direction?: string;
  };
  const selector = spec.interfaceselector;
  const ifname = selector.primarynodeinterface ? lookups.primaryInterface() : selector.interface;
  if (!ifname) {
    return {
      reason: 'waitingForInterface',
      message: 'spec.interfaceselector.primarynodeinterface: this node has no default route',
    };
  }
  const ifindex = lookups.interfaceIndex(ifname);
  if (ifindex === undefined) {
    return {
      reason: 'waitingForInterface',
      ifname,
      message: `interface ${ifname} does not exist on this node; the program attaches when it appears`,
    };
  }
  const kind =
    kindShort === 'xdp' ? 'xdp' : spec.direction === 'egress' ? 'tc-egress' : 'tc-ingress';
  return { kind, ifindex, ifname };
}

async function toDesired(
  document: EffectiveDocument,
  context: DesiredContext,
  lookups: NodeLookups,
): Promise<DesiredObject> {
  const { config, labels } = context;
  const object = document.object;
  const ref: ObjectRef = {
    kind: object.kind,
    name: object.metadata.name,
    file: document.file,
    index: document.index,
    generation: object.metadata.generation,
    retainedBecause: document.retained?.reason,
  };
  const kindShort = KIND_SHORT[object.kind];
  const key = `${kindShort}/${pinName(ref.name)}`;
  const spec = object.spec;

  if (!matchesNodeSelector(spec.nodeselector, labels)) {
    const selector = describeSelector(spec.nodeselector);
    return {
      ref,
      kindShort,
      blocker: {
        reason: 'notSelected',
        message: `node ${config.nodeName} does not match spec.nodeselector (${selector})`,
      },
    };
  }

  const tracepoint = object.kind === 'TracepointProgram' ? object.spec.name : undefined;
  let program: DesiredProgram;
  let blocker: Blocker | undefined;
  try {
    const bytecode = await resolveBytecode(object, ref, context, lookups);
    const { globalData, hash } = programVersion(object, bytecode.digest, tracepoint);
    const load = {
      objectPath: bytecode.objectPath,
      bytecodeDigest: bytecode.digest,
      image: bytecode.image,
      sectionName: spec.sectionname,
      programType: PROGRAM_TYPE[kindShort],
      globalData,
    };
    const pinDir = path.join(config.bpffsRoot, 'programs', kindShort, pinName(ref.name), hash);
    program = { ref, key, kindShort, specHash: hash, pinDir, load, tracepoint };
  } catch (err) {
    // Bytecode that cannot be had now (registry down, file gone mid-checkout) must not unload
    // the version already running: keep that one and say why nothing newer is loaded.
    const message = err instanceof Error ? err.message : String(err);
    const running = context.running(key);
    if (!running) return { ref, kindShort, blocker: { reason: 'bytecode', message } };
    blocker = { reason: 'bytecode', message: `${message}; the running version stays` };
    program = keptProgram(ref, key, kindShort, running, tracepoint);
  }

  // A version that can never load is not tried again until the manifest or bytecode changes;
  // the running version, if any, stays in its place.
  const failure = blocker ? undefined : context.failedLoad?.(program.pinDir);
  if (failure) {
    const running = context.running(key);
    if (!running || running.pinDir === program.pinDir) {
      const pinDir = program.pinDir;
      return { ref, kindShort, blocker: { reason: 'loadFailed', ...failure, pinDir } };
    }
    const kept = `; the previous version (program id ${running.programId}) keeps running`;
    const pinDir = program.pinDir;
    blocker = { reason: 'loadFailed', ...failure, message: failure.message + kept, pinDir };
    program = keptProgram(ref, key, kindShort, running, tracepoint);
  }

  if (object.kind === 'TracepointProgram') return { ref, kindShort, program, blocker };

  // Without its interface the program stays loaded (maps and counters kept) and attaches when
  // the interface comes back.
  const hook = resolveHook(object, kindShort, lookups);
  if ('reason' in hook) return { ref, kindShort, program, blocker: blocker ?? hook };
  program.attach = {
    hook,
    priority: object.spec.priority,
    proceedOn: proceedOnMask(object.kind, object.spec.proceedon),
  };
  return { ref, kindShort, program, blocker };
}

/** The running version of an object as a desired program: never loaded again, only kept. */
function keptProgram(
  ref: ObjectRef,
  key: string,
  kindShort: KindShort,
  running: ObservedProgram,
  tracepoint: string | undefined,
): DesiredProgram {
  return {
    ref,
    key,
    kindShort,
    specHash: running.specHash,
    pinDir: running.pinDir,
    load: {
      objectPath: '',
      bytecodeDigest: '',
      sectionName: '',
      programType: PROGRAM_TYPE[kindShort],
      globalData: new Map(),
    },
    tracepoint,
  };
}

function refRead(document: EffectiveDocument): ObjectRef {
  return {
    kind: document.object.kind,
    name: document.object.metadata.name,
    file: document.file,
    index: document.index,
  };
}

/**
 * Every effective document, checked for duplicates across files (the first by file and index
 * wins), then resolved against this node.
 */
export async function buildDesired(
  documents: EffectiveDocument[],
  context: DesiredContext,
): Promise<DesiredObject[]> {
  const { config } = context;
  const asParsed: ParsedDocument[] = documents.map((document) => ({
    file: document.file,
    index: document.index,
    kind: document.object.kind,
    name: document.object.metadata.name,
    object: document.object,
    errors: [],
  }));
  markDuplicates(asParsed);
  const lookups = new NodeLookups(config);
  const unsafe = new Map<string, string | undefined>();
  const unsafeReason = (file: string) => {
    if (!config.strictModes) return undefined;
    if (!unsafe.has(file)) unsafe.set(file, lookups.strictModes.reasonFor(file));
    return unsafe.get(file);
  };

  const objects: DesiredObject[] = [];
  for (const [position, document] of documents.entries()) {
    const refused = unsafeReason(document.file);
    const duplicate = asParsed[position].errors[0]?.message;
    const blocker: Blocker | undefined = refused
      ? { reason: 'unsafe', message: refused }
      : duplicate
        ? { reason: 'duplicate', message: duplicate }
        : undefined;
    objects.push(
      blocker
        ? { ref: refRead(document), kindShort: KIND_SHORT[document.object.kind], blocker }
        : await toDesired(document, context, lookups),
    );
  }
  return objects;
}
