/**
 * Image references as Docker and Kubernetes write them: `[registry/]repository[:tag][@digest]`.
 * A reference without a registry host means Docker Hub, as everywhere else.
 */
import { ImageReferenceError } from './errors.js';
import { isDigest } from './digest.js';

export interface ImageReference {
  /** `host[:port]`, lower-case; `docker.io` for Docker Hub. */
  registry: string;
  repository: string;
  /** `latest` when the reference names neither a tag nor a digest. */
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const DEFAULT_TAG = 'latest';
const MAX_NAME_LENGTH = 255;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`,
);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * Splits an image reference into registry, repository, tag and digest, filling in Docker's
 * defaults (`docker.io`, `library/` for one-word names, tag `latest`). Throws an
 * ImageReferenceError that says which part is wrong.
 */
export function parseImageReference(url: string): ImageReference {
  const text = url.trim();
  if (text === '') throw new ImageReferenceError(JSON.stringify(url), 'the reference is empty');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const hint = 'write it without a scheme, e.g. quay.io/bpfd-bytecode/xdp_pass:latest';
    throw new ImageReferenceError(text, `an image reference has no URL scheme; ${hint}`);
  }

  const [nameAndTag, digest, extra] = text.split('@');
  if (extra !== undefined) throw new ImageReferenceError(text, 'has more than one "@"');
  if (digest !== undefined && !isDigest(digest)) {
    const hint = 'expected sha256: and 64 lower-case hex digits (or sha512: and 128)';
    throw new ImageReferenceError(text, `digest ${JSON.stringify(digest)} is not valid; ${hint}`);
  }

  const { name, tag } = splitTag(text, nameAndTag);
  const { registry, repository } = splitRegistry(text, name);
  const reference: ImageReference = { registry, repository };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  if (tag === undefined && digest === undefined) reference.tag = DEFAULT_TAG;
  return reference;
}

/** The canonical text of a reference, e.g. `docker.io/library/xdp:latest`. */
export function formatImageReference(reference: ImageReference): string {
  const tag = reference.tag === undefined ? '' : `:${reference.tag}`;
  const digest = reference.digest === undefined ? '' : `@${reference.digest}`;
  return `${reference.registry}/${reference.repository}${tag}${digest}`;
}

/** The host that serves the registry API: Docker Hub's API lives on another name. */
export function registryEndpoint(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

/**
 * `host[:port]` of a registry as config files and Docker config keys write it
 * (`https://index.docker.io/v1/`, `Quay.io`), so that both compare equal.
 */
export function normalizeRegistryHost(text: string): string {
  const withoutScheme = text.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const host = withoutScheme.split('/')[0].toLowerCase();
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

function splitTag(text: string, nameAndTag: string): { name: string; tag?: string } {
  const lastSlash = nameAndTag.lastIndexOf('/');
  const colon = nameAndTag.indexOf(':', lastSlash + 1);
  if (colon < 0) return { name: nameAndTag };

  const tag = nameAndTag.slice(colon + 1);
  if (!TAG.test(tag)) {
    const rule = 'letters, digits, "_", "." and "-", at most 128, not starting with "." or "-"';
    throw new ImageReferenceError(text, `tag ${JSON.stringify(tag)} is not valid; use ${rule}`);
  }
  return { name: nameAndTag.slice(0, colon), tag };
}

function splitRegistry(text: string, name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  const hasRegistry =
    first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');

  const registry = hasRegistry ? normalizeRegistryHost(first) : DOCKER_HUB;
  if (hasRegistry && !DOMAIN.test(first)) {
    throw new ImageReferenceError(text, `registry ${JSON.stringify(first)} is not a host[:port]`);
  }

  let repository = hasRegistry ? name.slice(slash + 1) : name;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  checkRepository(text, repository);
  return { registry, repository };
}

function checkRepository(text: string, repository: string): void {
  if (repository.length > MAX_NAME_LENGTH) {
    throw new ImageReferenceError(text, `repository name is longer than ${MAX_NAME_LENGTH}`);
  }
  for (const component of repository.split('/')) {
    if (PATH_COMPONENT.test(component)) continue;
    const rule = 'lower-case letters and digits, separated by ".", "_", "__" or "-"';
    const shown = JSON.stringify(component);
    throw new ImageReferenceError(text, `repository part ${shown} is not valid; use ${rule}`);
  }
}
