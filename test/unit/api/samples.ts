import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { expect } from 'chai';

import { parseManifestText, type ParsedDocument } from '../../../src/api/index.js';
import type { ManifestError } from '../../../src/errors.js';

/** Manifests in the style of bpfd's own samples (bpfd-operator/config/samples). */
export const XDP_SAMPLE = `apiVersion: bpfd.io/v1alpha1
kind: XdpProgram
metadata:
  labels:
    app.kubernetes.io/name: xdpprogram
  name: xdp-pass-all-nodes
spec:
  sectionname: pass
  # Select all nodes
  nodeselector: {}
  interfaceselector:
    primarynodeinterface: true
  priority: 0
  bytecode:
    image:
      url: quay.io/bpfd-bytecode/xdp_pass:latest
`;

export const TC_SAMPLE = `apiVersion: bpfd.io/v1alpha1
kind: TcProgram
metadata:
  labels:
    app.kubernetes.io/name: tcprogram
  name: tc-pass-all-nodes
spec:
  sectionname: classifier
  nodeselector: {}
  interfaceselector:
    interface: eth0
  priority: 0
  direction: INGRESS
  bytecode:
    path: /usr/lib/bpfd/tc_pass.o
`;

export const TRACEPOINT_SAMPLE = `apiVersion: bpfd.io/v1alpha1
kind: TracepointProgram
metadata:
  labels:
    app.kubernetes.io/name: tracepointprogram
  name: tracepoint-example
spec:
  sectionname: hello
  nodeselector: {}
  name: syscalls/sys_enter_openat
  bytecode:
    image:
      url: quay.io/bpfd-bytecode/tracepoint:latest
`;

export const BPFPROGRAM_SAMPLE = `apiVersion: bpfd.io/v1alpha1
kind: BpfProgram
metadata:
  name: xdp-pass-all-nodes-node1
spec:
  node: node1
  type: xdp
  programs:
    "42":
      xdp_stats_map: /sys/fs/bpf/bpfd/xdp-pass-all-nodes/maps/xdp_stats_map
status:
  conditions:
    - type: Loaded
      status: "True"
      reason: bpfdLoaded
      message: loaded
      lastTransitionTime: "2023-06-01T10:00:00Z"
`;

/** The single document of `text`, parsed as if read from `file`. */
export function parseOne(text: string, file = 'programs.yaml'): ParsedDocument {
  const parsed = parseManifestText(file, text);
  expect(parsed.fileError, parsed.fileError?.message).to.equal(undefined);
  expect(parsed.documents).to.have.length(1);
  return parsed.documents[0]!;
}

/** The errors of `document` as `fieldPath: message` lines, for readable assertion failures. */
export function errorLines(document: ParsedDocument): string[] {
  return document.errors.map((error) => `${error.fieldPath ?? '-'}: ${error.message}`);
}

/** The one error at `fieldPath`; fails when there is none or several. */
export function errorAt(document: ParsedDocument, fieldPath: string): ManifestError {
  const matching = document.errors.filter((error) => error.fieldPath === fieldPath);
  expect(
    matching,
    `errors at ${fieldPath} among ${JSON.stringify(errorLines(document))}`,
  ).to.have.length(1);
  return matching[0]!;
}

/** `sample` with the line that starts with `from` (after indentation) replaced by `to`. */
export function withLine(sample: string, from: string, to: string): string {
  const lines = sample.split('\n');
  const index = lines.findIndex((line) => line.trimStart().startsWith(from));
  expect(index, `line starting with ${from}`).to.not.equal(-1);
  const indent = lines[index]!.slice(0, lines[index]!.length - lines[index]!.trimStart().length);
  lines.splice(index, 1, ...to.split('\n').map((line) => (line === '' ? line : indent + line)));
  return lines.join('\n');
}

/** A fresh directory under the OS temp dir, and a function that removes it. */
export async function makeTempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'bpfd-api-test-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Write `content` at `path`, creating parent directories. */
export async function writeTree(root: string, files: Record<string, string | Buffer>) {
  for (const [relative, content] of Object.entries(files)) {
    const path = join(root, relative);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  }
}
