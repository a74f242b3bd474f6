/**
 * Which CAs an https connection to a registry trusts: Node's bundled roots, the system's CA
 * bundle (so certificates added with update-ca-certificates work) and the PEM file that
 * `registries.caFiles` names for that registry.
 */
import fs from 'node:fs/promises';
import tls from 'node:tls';

import { normalizeRegistryHost } from './reference.js';

const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
];
const MAX_CA_FILE_BYTES = 4 * 1024 * 1024;

/** A CA file that cannot be used; the message names the config key and the file. */
export class CaFileError extends Error {}

export class TrustStore {
  private readonly caFiles: Map<string, string>;
  private systemRoots: Promise<string[]> | undefined;

  constructor(caFiles: Record<string, string>) {
    const entries = Object.entries(caFiles).map(([host, file]) => [
      normalizeRegistryHost(host),
      file,
    ]);
    this.caFiles = new Map(entries as Array<[string, string]>);
  }

  /** The certificates to trust for `host[:port]`. Throws CaFileError. */
  async certificatesFor(host: string): Promise<string[]> {
    const roots = await this.roots();
    const caFile = this.caFiles.get(normalizeRegistryHost(host));
    if (caFile === undefined) return roots;
    return [...roots, await readCaFile(host, caFile)];
  }

  private roots(): Promise<string[]> {
    this.systemRoots ??= loadSystemRoots();
    return this.systemRoots;
  }
}

async function loadSystemRoots(): Promise<string[]> {
  const roots = [...tls.rootCertificates];
  for (const bundle of SYSTEM_BUNDLES) {
    const text = await fs.readFile(bundle, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    roots.push(text);
    break;
  }
  return roots;
}

async function readCaFile(host: string, file: string): Promise<string> {
  const where = `registries.caFiles["${host}"] ${file}`;
  let text: string;
  try {
    const stats = await fs.stat(file);
    if (stats.size > MAX_CA_FILE_BYTES) throw new CaFileError(`${where} is larger than 4 MiB`);
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof CaFileError) throw error;
    const code = (error as { code?: string }).code ?? (error as Error).message;
    throw new CaFileError(`${where} cannot be read (${code})`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CaFileError(`${where} holds no PEM certificate`);
  }
  return text;
}
