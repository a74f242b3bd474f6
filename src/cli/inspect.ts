/** `bpfd plan`, `bpfd status` and `bpfd get`: read manifests, sidecars and the pin tree only. */
import fs from 'node:fs';

import yaml from 'js-yaml';

import { loadConfig, type Config, type ConfigOverrides } from '../config/index.js';
import { describeHook, interfaceName, pinName } from '../kernel/index.js';
import {
  imageStoreFor,
  observe,
  preview,
  type Action,
  type ObservedState,
} from '../reconcile/index.js';
import { readSidecar, sidecarPath } from '../status/index.js';
import { ManifestWatcher, type ManifestSnapshot } from '../watcher/index.js';
import { lastKnownGoodDir } from './run.js';

interface CommonOptions {
  configFile?: string;
  overrides: ConfigOverrides;
}

/**
 * The manifest dir as the daemon sees it: the files now, with the last-known-good copies the
 * daemon keeps for files that stopped parsing (read, never written).
 */
async function readSnapshot(config: Config): Promise<ManifestSnapshot> {
  const watcher = new ManifestWatcher({
    dir: config.manifestDir,
    lastKnownGoodDir: lastKnownGoodDir(config),
    lastKnownGoodReadOnly: true,
  });
  try {
    return await watcher.start();
  } finally {
    await watcher.close();
  }
}

function describeAction(action: Action): string {
  switch (action.type) {
    case 'load':
      return `load ${action.program.key} from ${action.program.load.objectPath} (${action.program.ref.file})`;
    case 'attachTracepoint':
      return `attach ${action.program.key} to tracepoint ${action.program.tracepoint}`;
    case 'installChain':
      return `install chain on ${describeHook(action.hook)}: ${action.members.map((m) => m.key).join(' → ')}`;
    case 'removeDispatcher':
      return `remove dispatcher ${action.dispatcher.hook.kind} on ifindex ${action.dispatcher.hook.ifindex}`;
    case 'removeStaleRevisions':
      return `remove stale revisions of ${action.dispatcher.hook.kind} on ifindex ${action.dispatcher.hook.ifindex}`;
    case 'unload':
      return `unload ${action.program.key} (program id ${action.program.programId ?? 'none'})`;
  }
}

export async function planCommand(options: CommonOptions, output: string): Promise<number> {
  const config = await loadConfig({ file: options.configFile, overrides: options.overrides });
  const snapshot = await readSnapshot(config);
  const { plan } = await preview(snapshot, config, imageStoreFor(config));
  const lines = plan.actions.map(describeAction);
  if (output === 'json') {
    process.stdout.write(
      JSON.stringify({ changes: lines, rejected: Object.fromEntries(plan.rejected) }, null, 2) +
        '\n',
    );
  } else if (lines.length === 0) {
    process.stdout.write('No changes: the kernel matches the manifests.\n');
  } else {
    process.stdout.write(
      lines.map((line) => `  ${line}`).join('\n') + `\n${lines.length} change(s).\n`,
    );
  }
  return plan.actions.length > 0 ? 2 : 0;
}

interface StatusDocument {
  kind?: string;
  metadata?: {
    name?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { programs?: Record<string, unknown> };
  status?: { conditions?: Array<{ type: string; status: string; message: string }> };
}

interface ObjectRow {
  file: string;
  kind: string;
  name: string;
  condition: string;
  programIds: string[];
  attachPoint: string;
  message: string;
  documents: StatusDocument[];
}

async function objectRows(config: Config, snapshot: ManifestSnapshot): Promise<ObjectRow[]> {
  const rows: ObjectRow[] = [];
  for (const { file } of snapshot.files) {
    const documents = (await readSidecar(
      sidecarPath(file, config.manifestDir, config.statusDir),
    )) as StatusDocument[];
    for (const document of documents) {
      if (document.kind === 'BpfProgram') continue;
      const name = document.metadata?.name ?? '';
      const bpfProgram = documents.find(
        (d) => d.kind === 'BpfProgram' && d.metadata?.labels?.ownedByProgram === name,
      );
      const current = bpfProgram?.status?.conditions?.at(-1) ?? document.status?.conditions?.at(-1);
      rows.push({
        file,
        kind: document.kind ?? '',
        name,
        condition: current?.type ?? 'Unknown',
        programIds: Object.keys(bpfProgram?.spec?.programs ?? {}),
        attachPoint: bpfProgram?.metadata?.annotations?.['bpfd.io/attach-point'] ?? '',
        message: current?.message ?? '',
        documents: bpfProgram ? [document, bpfProgram] : [document],
      });
    }
  }
  return rows;
}

interface ChainSettings {
  priority?: number;
  proceedon?: string[];
}

/** Priority and proceedon of each XDP/TC object by program key, as the manifests say now. */
function chainSettings(snapshot: ManifestSnapshot): Map<string, ChainSettings> {
  const settings = new Map<string, ChainSettings>();
  for (const document of snapshot.files.flatMap((file) => file.effective)) {
    const { object } = document;
    if (object.kind === 'TracepointProgram') continue;
    const key = `${object.kind === 'XdpProgram' ? 'xdp' : 'tc'}/${pinName(object.metadata.name)}`;
    // The first definition by file and position is the one in effect (later ones are duplicates).
    if (settings.has(key)) continue;
    settings.set(key, { priority: object.spec.priority, proceedon: object.spec.proceedon });
  }
  return settings;
}

function hookRows(observed: ObservedState, settings: Map<string, ChainSettings>) {
  const keysById = new Map(observed.programs.map((p) => [p.programId, p.key]));
  return observed.dispatchers.map((d) => ({
    hook: d.hook.kind,
    interface: interfaceName(d.hook.ifindex) ?? `ifindex ${d.hook.ifindex} (gone)`,
    xdpMode: d.xdpMode,
    linkId: d.link?.id,
    dispatcherId: d.current?.programId,
    revision: d.current?.number,
    chain: d.chainIds.map((id, slot) => {
      const object = keysById.get(id) ?? '?';
      const { priority, proceedon } = settings.get(object) ?? {};
      return {
        position: slot + 1,
        programId: id,
        object,
        priority,
        proceedon: proceedon ?? 'default',
      };
    }),
  }));
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return (
    rows
      .map((row) =>
        row
          .map((cell, c) => cell.padEnd(widths[c]))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

export async function inspect(
  options: CommonOptions,
  query: { output: string; kind?: string; name?: string },
): Promise<number> {
  const config = await loadConfig({ file: options.configFile, overrides: options.overrides });
  const snapshot = await readSnapshot(config);
  const rows = await objectRows(config, snapshot);
  const format = (value: unknown) =>
    query.output === 'json'
      ? JSON.stringify(value, null, 2) + '\n'
      : yaml.dump(value, { noRefs: true });

  if (query.kind) {
    const row = rows.find(
      (r) => r.kind.toLowerCase() === query.kind!.toLowerCase() && r.name === query.name,
    );
    if (!row) {
      process.stderr.write(`bpfd: no ${query.kind} named ${query.name} in ${config.manifestDir}\n`);
      return 1;
    }
    process.stdout.write(
      query.output === 'json'
        ? format(row.documents)
        : row.documents.map((d) => yaml.dump(d)).join('---\n'),
    );
    return 0;
  }

  const hooks = fs.existsSync(config.bpffsRoot)
    ? hookRows(observe(config.bpffsRoot), chainSettings(snapshot))
    : [];
  if (query.output === 'json' || query.output === 'yaml') {
    const objects = rows.map(({ documents: _documents, ...row }) => row);
    process.stdout.write(format({ node: config.nodeName, objects, hooks }));
    return 0;
  }
  const objectTable = [['KIND', 'NAME', 'CONDITION', 'PROGRAM', 'ATTACHED', 'FILE']].concat(
    rows.map((r) => [
      r.kind,
      r.name,
      r.condition,
      r.programIds.join(',') || '-',
      r.attachPoint || '-',
      r.file,
    ]),
  );
  process.stdout.write(table(objectTable));
  for (const hook of hooks) {
    process.stdout.write(
      `\n${hook.hook} on ${hook.interface}${hook.xdpMode ? ` (${hook.xdpMode})` : ''}: ` +
        `dispatcher ${hook.dispatcherId ?? '-'} (revision ${hook.revision ?? '-'}, link ${hook.linkId ?? '-'})\n`,
    );
    for (const entry of hook.chain) {
      const proceedon = Array.isArray(entry.proceedon)
        ? entry.proceedon.join(',')
        : entry.proceedon;
      process.stdout.write(
        `  ${entry.position}. ${entry.object}  program ${entry.programId}  ` +
          `priority ${entry.priority ?? '?'}  proceedon ${proceedon}\n`,
      );
    }
  }
  return 0;
}
