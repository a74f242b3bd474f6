/**
 * `imagepullsecret {name, namespace}` on a node without Kubernetes: the file
 * `<secretsDir>/<namespace>/<name>.json` (a Docker config.json) or `<name>.yaml` (a Kubernetes
 * Secret of type kubernetes.io/dockerconfigjson, as `kubectl get secret -o yaml` prints it).
 * Messages name the file and the registry, never a user name, password or token.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

import yaml from 'js-yaml';

import type { RegistryCredentials } from './auth.js';
import { ImagePullSecretError } from './errors.js';
import { normalizeRegistryHost } from './reference.js';

export interface PullSecretSelector {
  name: string;
  namespace: string;
}

export interface SecretLogger {
  warn(fields: object, message: string): void;
}

const MAX_SECRET_BYTES = 1024 * 1024;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_TYPE = 'kubernetes.io/dockerconfigjson';
const DATA_KEY = '.dockerconfigjson';

/**
 * The credentials the pull secret holds for `registry`, or undefined when it has none for it
 * (the pull then goes on anonymously, as the kubelet's does). Throws ImagePullSecretError.
 */
export async function loadPullSecret(
  secretsDir: string,
  selector: PullSecretSelector,
  registry: string,
  reference: string,
  logger?: SecretLogger,
): Promise<RegistryCredentials | undefined> {
  checkSelector(selector, reference);
  const base = path.join(secretsDir, selector.namespace, selector.name);
  const source = `pull secret ${selector.namespace}/${selector.name}`;

  const jsonText = await readSecretFile(`${base}.json`, reference);
  const yamlText = await readSecretFile(`${base}.yaml`, reference);
  if (jsonText !== undefined && yamlText !== undefined) {
    const message = `${source}: both ${base}.json and ${base}.yaml exist; keep one of them`;
    throw new ImagePullSecretError(reference, message);
  }
  if (jsonText === undefined && yamlText === undefined) {
    const message = `${source} not found: expected ${base}.json or ${base}.yaml`;
    throw new ImagePullSecretError(reference, message);
  }

  const file = jsonText !== undefined ? `${base}.json` : `${base}.yaml`;
  const where = { reference, file: `${source} (${file})` };
  const dockerConfig = jsonText ?? dockerConfigFromSecret(yamlText as string, selector, where);
  const credentials = credentialsFromDockerConfig(dockerConfig, registry, where);
  if (credentials === undefined) {
    logger?.warn({ secret: source, registry }, 'pull secret has no entry for the registry');
  }
  return credentials;
}

/** Where a secret was read, for messages. */
export interface SecretSource {
  reference: string;
  file: string;
}

/**
 * The Docker config (`.dockerconfigjson`) inside a Kubernetes Secret document: from
 * `data` (base64) or `stringData` (plain).
 */
export function dockerConfigFromSecret(
  text: string,
  selector: PullSecretSelector,
  where: SecretSource,
): string {
  const secret = parseSecretYaml(text, where) as Record<string, any>;
  const fail = (problem: string): never => {
    throw new ImagePullSecretError(where.reference, `${where.file}: ${problem}`);
  };
  if (typeof secret !== 'object' || secret === null || secret.kind !== 'Secret') {
    fail('is not a Kubernetes Secret (kind: Secret)');
  }
  if (secret.type !== SECRET_TYPE) fail(`must have type ${SECRET_TYPE}`);

  const metadata = secret.metadata ?? {};
  if (metadata.name !== undefined && metadata.name !== selector.name) {
    fail(`metadata.name is not ${JSON.stringify(selector.name)} as the file name says`);
  }
  if (metadata.namespace !== undefined && metadata.namespace !== selector.namespace) {
    fail(`metadata.namespace is not ${JSON.stringify(selector.namespace)} as its folder says`);
  }

  const encoded = secret.data?.[DATA_KEY];
  if (typeof encoded === 'string') return decodeBase64(encoded, where, `data[${DATA_KEY}]`);
  const plain = secret.stringData?.[DATA_KEY];
  if (typeof plain === 'string') return plain;
  return fail(`has no data[${DATA_KEY}]`);
}

/**
 * The credentials a Docker config holds for `registry` (`auths` keys compared as host[:port],
 * `https://index.docker.io/v1/` meaning docker.io), from `auth` (base64 user:password) or
 * `username` and `password`. Undefined when there is no entry for the registry.
 */
export function credentialsFromDockerConfig(
  text: string,
  registry: string,
  where: SecretSource,
): RegistryCredentials | undefined {
  const fail = (problem: string): never => {
    throw new ImagePullSecretError(where.reference, `${where.file}: ${problem}`);
  };
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text around the error; that text may be a password.
    return fail('is not valid JSON (Docker config.json format expected)');
  }
  const auths = (config as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    return fail('has no "auths" object (Docker config.json format expected)');
  }

  const wanted = normalizeRegistryHost(registry);
  const key = Object.keys(auths).find((name) => normalizeRegistryHost(name) === wanted);
  if (key === undefined) return undefined;

  const entry = (auths as Record<string, unknown>)[key];
  const shown = `auths[${JSON.stringify(key)}]`;
  if (typeof entry !== 'object' || entry === null) return fail(`${shown} is not an object`);
  return entryCredentials(entry as Record<string, unknown>, shown, where, fail);
}

function entryCredentials(
  entry: Record<string, unknown>,
  shown: string,
  where: SecretSource,
  fail: (problem: string) => never,
): RegistryCredentials {
  const source = where.file;
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const pair = decodeBase64(entry.auth, where, `${shown}.auth`);
    const colon = pair.indexOf(':');
    if (colon <= 0) return fail(`${shown}.auth is not base64 of "username:password"`);
    return { username: pair.slice(0, colon), password: pair.slice(colon + 1), source };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password, source };
  }
  if (entry.identitytoken !== undefined || entry.registrytoken !== undefined) {
    // LIMITATION: OAuth2 refresh tokens (identitytoken) need a token exchange we do not do.
    return fail(`${shown} holds a token; give "auth" or "username" and "password" instead`);
  }
  return fail(`${shown} has neither "auth" nor "username" and "password"`);
}

function parseSecretYaml(text: string, where: SecretSource): unknown {
  try {
    return yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (error) {
    // The YAML error's snippet would quote the file; give the line only.
    const line = (error as { mark?: { line: number } }).mark?.line;
    const at = line === undefined ? '' : ` at line ${line + 1}`;
    throw new ImagePullSecretError(where.reference, `${where.file}: is not valid YAML${at}`);
  }
}

function decodeBase64(text: string, where: SecretSource, field: string): string {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
    throw new ImagePullSecretError(where.reference, `${where.file}: ${field} is not base64`);
  }
  return Buffer.from(compact, 'base64').toString('utf8');
}

function checkSelector(selector: PullSecretSelector, reference: string): void {
  if (!DNS1123_LABEL.test(selector.namespace) || selector.namespace.length > 63) {
    const shown = JSON.stringify(selector.namespace);
    const message = `imagepullsecret namespace ${shown} is not a DNS-1123 label`;
    throw new ImagePullSecretError(reference, message);
  }
  if (!DNS1123_SUBDOMAIN.test(selector.name) || selector.name.length > 253) {
    const shown = JSON.stringify(selector.name);
    const message = `imagepullsecret name ${shown} is not a DNS-1123 subdomain`;
    throw new ImagePullSecretError(reference, message);
  }
}

/** The file's text, or undefined when it does not exist. */
async function readSecretFile(file: string, reference: string): Promise<string | undefined> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new ImagePullSecretError(reference, `${file} is not a file`);
      if (stats.size > MAX_SECRET_BYTES) {
        throw new ImagePullSecretError(reference, `${file} is larger than 1 MiB`);
      }
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof ImagePullSecretError) throw error;
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT') return undefined;
    throw new ImagePullSecretError(reference, `${file} cannot be read (${code})`);
  }
}
