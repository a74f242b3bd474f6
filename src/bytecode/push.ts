/**
 * Pushes an OCI image layout to a registry: blobs the registry lacks, then the manifests of an
 * index by digest, then the top manifest under the tag. For tests and for users without
 * skopeo, oras or buildah at hand.
 */
import type { RegistryCredentials } from './auth.js';
import { ImageDigestError } from './errors.js';
import { readImageLayout, type ImageLayout } from './layout.js';
import type { Descriptor, Manifest } from './manifest.js';
import { parseImageReference } from './reference.js';
import { RegistryClient } from './registry-client.js';
import { DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BASE_DELAY_MS, sleep } from './retry.js';
import { DEFAULT_TIMEOUT_MS } from './store.js';
import { TrustStore } from './trust.js';

export interface PushOptions {
  /** Plain HTTP to this registry and to the hosts it sends us to (its token service). */
  insecure?: boolean;
  username?: string;
  password?: string;
  /** PEM file of a CA to trust besides the system's. */
  caFile?: string;
}

export async function pushImageLayout(
  layoutDir: string,
  url: string,
  options: PushOptions = {},
): Promise<{ manifestDigest: string }> {
  const reference = parseImageReference(url);
  const layout = await readImageLayout(layoutDir);
  if (reference.digest !== undefined && reference.digest !== layout.top.digest) {
    throw new ImageDigestError(url, 'the layout', reference.digest, layout.top.digest);
  }

  const client = new RegistryClient({
    reference: url,
    registry: reference.registry,
    repository: reference.repository,
    actions: ['pull', 'push'],
    credentials: credentialsOf(options),
    insecureRegistries: options.insecure ? [reference.registry] : [],
    insecureEverywhere: options.insecure === true,
    trust: new TrustStore(options.caFile ? { [reference.registry]: options.caFile } : {}),
    timeoutMs: DEFAULT_TIMEOUT_MS,
    retry: { attempts: DEFAULT_RETRY_ATTEMPTS, baseDelayMs: DEFAULT_RETRY_BASE_DELAY_MS, sleep },
  });
  try {
    await pushContent(client, layout, layout.topManifest);
    const target = reference.digest ?? (reference.tag as string);
    await client.putManifest(target, layout.topBytes, layout.top.mediaType);
  } finally {
    client.close();
  }
  return { manifestDigest: layout.top.digest };
}

/** Everything the top manifest needs on the registry before the manifest itself. */
async function pushContent(
  client: RegistryClient,
  layout: ImageLayout,
  top: Manifest,
): Promise<void> {
  if (top.kind === 'image') {
    await pushBlobs(client, layout, [top.config, ...top.layers]);
    return;
  }
  for (const entry of top.manifests) {
    const manifest = await layout.readManifest(entry);
    if (manifest.kind !== 'image') continue;
    await pushBlobs(client, layout, [manifest.config, ...manifest.layers]);
    await client.putManifest(entry.digest, await layout.readBlob(entry), entry.mediaType);
  }
}

async function pushBlobs(
  client: RegistryClient,
  layout: ImageLayout,
  descriptors: Descriptor[],
): Promise<void> {
  for (const descriptor of descriptors) {
    if (await client.blobExists(descriptor.digest)) continue;
    await client.uploadBlob(descriptor.digest, await layout.readBlob(descriptor));
  }
}

function credentialsOf(options: PushOptions): RegistryCredentials | undefined {
  if (options.username === undefined) return undefined;
  return {
    username: options.username,
    password: options.password ?? '',
    source: 'the credentials given to push',
  };
}
