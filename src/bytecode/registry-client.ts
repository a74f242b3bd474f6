/**
 * A client of the OCI distribution API (v2) for one repository: manifests and blobs down,
 * blobs and manifests up. It follows redirects (dropping credentials when the origin changes),
 * answers 401 challenges with basic credentials or a bearer token, retries what is transient
 * and turns every failure into an ImageError that names the image and holds no credential.
 */
import { randomUUID } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';

import {
  basicAuthorization,
  parseTokenResponse,
  parseWwwAuthenticate,
  redact,
  repositoryScope,
  tokenRequestUrl,
  type Challenge,
  type RegistryCredentials,
} from './auth.js';
import { DigestHasher, digestOf, isDigest, splitDigest } from './digest.js';
import {
  ImageAuthError,
  ImageDigestError,
  ImageFormatError,
  ImageNotFoundError,
  RegistryError,
  RegistryTlsError,
  RegistryUnreachableError,
} from './errors.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, type Descriptor } from './manifest.js';
import { normalizeRegistryHost, registryEndpoint } from './reference.js';
import { withRetries, type RetryPolicy } from './retry.js';
import {
  BodyTooLargeError,
  createAgents,
  destroyAgents,
  discardBody,
  readBody,
  saveBody,
  sendHttpRequest,
  NetworkError,
  type HttpMethod,
  type HttpResponse,
} from './transport.js';
import { CaFileError, type TrustStore } from './trust.js';
import type { ImageLogger } from './types.js';

const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_TOKEN_BYTES = 1024 * 1024;
const USER_AGENT = 'bpfd-gitops';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface RegistryClientOptions {
  /** The image as the user wrote it, for messages. */
  reference: string;
  registry: string;
  repository: string;
  actions: Array<'pull' | 'push'>;
  credentials?: RegistryCredentials;
  insecureRegistries: string[];
  /** Plain HTTP to any host the registry sends us to (token realm, redirects); push only. */
  insecureEverywhere?: boolean;
  trust: TrustStore;
  timeoutMs: number;
  retry: RetryPolicy;
  logger?: ImageLogger;
}

export interface FetchedManifest {
  digest: string;
  bytes: Buffer;
  contentType?: string;
}

interface ExchangeSpec {
  method: HttpMethod;
  /** A path below `/v2/<repository>/`, or a full URL (upload locations). */
  target: string | URL;
  headers?: Record<string, string>;
  body?: Buffer;
}

export class RegistryClient {
  private readonly options: RegistryClientOptions;
  private readonly agents = createAgents();
  private readonly insecure: Set<string>;
  private readonly base: URL;
  private authorization: string | undefined;

  constructor(options: RegistryClientOptions) {
    this.options = options;
    this.insecure = new Set(options.insecureRegistries.map(normalizeRegistryHost));
    const protocol = this.insecure.has(options.registry) ? 'http:' : 'https:';
    this.base = new URL(`${protocol}//${registryEndpoint(options.registry)}/`);
  }

  /** Ends the kept-alive connections. */
  close(): void {
    destroyAgents(this.agents);
  }

  /** The digest a tag points to now (HEAD), or undefined if the registry does not say. */
  async manifestDigest(tagOrDigest: string): Promise<string | undefined> {
    const spec = { method: 'HEAD' as const, target: `manifests/${tagOrDigest}` };
    return this.exchange(spec, { accept: MANIFEST_ACCEPT }, async (response) => {
      await discardBody(response);
      const digest = header(response, 'docker-content-digest');
      return digest !== undefined && isDigest(digest) ? digest : undefined;
    });
  }

  /** A manifest, checked against `expectedDigest` and the registry's own digest header. */
  async fetchManifest(tagOrDigest: string, expectedDigest?: string): Promise<FetchedManifest> {
    const spec = { method: 'GET' as const, target: `manifests/${tagOrDigest}` };
    return this.exchange(spec, { accept: MANIFEST_ACCEPT }, async (response) => {
      const bytes = await this.readLimited(response, MAX_MANIFEST_BYTES, 'manifest');
      const announced = header(response, 'docker-content-digest');
      const digest = this.checkManifestDigest(bytes, expectedDigest, announced);
      return { digest, bytes, contentType: header(response, 'content-type') };
    });
  }

  /** A small blob (config) in memory, checked against its digest. */
  async fetchBlob(descriptor: Descriptor, maxBytes: number, what: string): Promise<Buffer> {
    this.checkDeclaredSize(descriptor, maxBytes, what);
    const spec = { method: 'GET' as const, target: `blobs/${descriptor.digest}` };
    return this.exchange(spec, {}, async (response) => {
      const bytes = await this.readLimited(response, maxBytes, what);
      const actual = digestOf(bytes, splitDigest(descriptor.digest).algorithm);
      if (actual !== descriptor.digest) this.digestMismatch(what, descriptor.digest, actual);
      return bytes;
    });
  }

  /** A blob streamed into `file` (a new file), checked against its digest and size limit. */
  async downloadBlob(
    descriptor: Descriptor,
    file: string,
    maxBytes: number,
    what: string,
  ): Promise<void> {
    this.checkDeclaredSize(descriptor, maxBytes, what);
    const spec = { method: 'GET' as const, target: `blobs/${descriptor.digest}` };
    const { algorithm } = splitDigest(descriptor.digest);
    await this.exchange(spec, {}, async (response) => {
      const target = `${file}.${randomUUID()}`;
      const actual = await this.limited(what, () =>
        saveBody(response, target, new DigestHasher(algorithm), maxBytes),
      );
      if (actual !== descriptor.digest) {
        await rm(target, { force: true });
        this.digestMismatch(what, descriptor.digest, actual);
      }
      await rename(target, file);
    });
  }

  async blobExists(digest: string): Promise<boolean> {
    const spec = { method: 'HEAD' as const, target: `blobs/${digest}` };
    return this.exchange(spec, { allowNotFound: true }, async (response) => {
      await discardBody(response);
      return response.status === 200;
    });
  }

  /** A monolithic upload: POST for an upload location, then PUT of the whole blob. */
  async uploadBlob(digest: string, content: Buffer): Promise<void> {
    const start = { method: 'POST' as const, target: 'blobs/uploads/' };
    const location = await this.exchange(start, { expect: [202] }, async (response) => {
      await discardBody(response);
      const value = header(response, 'location');
      if (value === undefined) this.protocolError('upload start answered without a Location');
      return new URL(value as string, response.url);
    });

    location.searchParams.set('digest', digest);
    const headers = { 'content-type': 'application/octet-stream' };
    const finish = { method: 'PUT' as const, target: location, headers, body: content };
    await this.exchange(finish, { expect: [201] }, discardBody);
  }

  /** Stores a manifest under a tag or its digest; returns the digest. */
  async putManifest(tagOrDigest: string, bytes: Buffer, mediaType: string): Promise<string> {
    const headers = { 'content-type': mediaType };
    const spec = {
      method: 'PUT' as const,
      target: `manifests/${tagOrDigest}`,
      headers,
      body: bytes,
    };
    await this.exchange(spec, { expect: [201] }, discardBody);
    return digestOf(bytes);
  }

  /**
   * One request with auth, redirects and retries; `consume` reads the successful answer. A
   * 404 is ImageNotFoundError unless `allowNotFound`.
   */
  private exchange<T>(
    spec: ExchangeSpec,
    expectation: { accept?: string; expect?: number[]; allowNotFound?: boolean },
    consume: (response: HttpResponse) => Promise<T>,
  ): Promise<T> {
    const headers = { ...spec.headers };
    if (expectation.accept) headers.accept = expectation.accept;
    const request = { ...spec, headers };

    const once = async () => {
      const response = await this.sendAuthorized(request);
      const expected = expectation.expect ?? [200];
      if (expected.includes(response.status)) return consume(response);
      if (response.status === 404 && expectation.allowNotFound) return consume(response);
      return this.failOnStatus(response, spec);
    };
    return withRetries(this.options.retry, once, isTransient, (error, attempt, delayMs) => {
      const problem = (error as Error).message;
      this.options.logger?.debug({ attempt, delayMs, problem }, 'retrying registry request');
    });
  }

  private async sendAuthorized(spec: ExchangeSpec): Promise<HttpResponse> {
    const response = await this.sendFollowing(spec, this.authorization);
    if (response.status !== 401) return this.refuseForbidden(response);

    await discardBody(response);
    await this.authenticate(header(response, 'www-authenticate') ?? '');
    const retried = await this.sendFollowing(spec, this.authorization);
    if (retried.status === 401) {
      await discardBody(retried);
      throw this.authRefused();
    }
    return this.refuseForbidden(retried);
  }

  private async refuseForbidden(response: HttpResponse): Promise<HttpResponse> {
    if (response.status !== 403) return response;
    await discardBody(response);
    throw new ImageAuthError(
      this.options.reference,
      `registry ${this.options.registry} denied ${this.describeAccess()} ` +
        `(HTTP 403)${this.credentialsHint()}`,
    );
  }

  /** Sends, following redirects for GET and HEAD; credentials stay with their origin. */
  private async sendFollowing(spec: ExchangeSpec, authorization?: string): Promise<HttpResponse> {
    let url = typeof spec.target === 'string' ? this.urlFor(spec.target) : spec.target;
    let credentials = authorization;
    const follows = spec.method === 'GET' || spec.method === 'HEAD';

    for (let redirects = 0; ; redirects += 1) {
      const response = await this.send(spec, url, credentials);
      const location = header(response, 'location');
      if (!follows || !REDIRECT_STATUSES.has(response.status) || location === undefined) {
        return response;
      }
      await discardBody(response);
      if (redirects >= MAX_REDIRECTS) this.protocolError(`more than ${MAX_REDIRECTS} redirects`);

      const next = new URL(location, url);
      if (next.origin !== url.origin) credentials = undefined;
      url = next;
    }
  }

  private async send(spec: ExchangeSpec, url: URL, authorization?: string): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...spec.headers, 'user-agent': USER_AGENT };
    if (authorization !== undefined) headers.authorization = authorization;
    const ca = await this.trustFor(url);
    const request = { method: spec.method, url, headers, body: spec.body, ca };
    try {
      return await sendHttpRequest({ ...request, timeoutMs: this.options.timeoutMs }, this.agents);
    } catch (error) {
      throw this.networkFailure(url, error);
    }
  }

  /** Plain HTTP only to hosts listed as insecure; https with the system and configured CAs. */
  private async trustFor(url: URL): Promise<string[] | undefined> {
    const host = url.host;
    if (url.protocol === 'http:') {
      if (this.options.insecureEverywhere) return undefined;
      if (this.insecure.has(normalizeRegistryHost(host))) return undefined;
      throw new RegistryTlsError(
        this.options.reference,
        `refusing plain HTTP to ${host}; list it in registries.insecure if that is intended`,
      );
    }
    if (url.protocol !== 'https:') this.protocolError(`unsupported URL scheme ${url.protocol}`);
    try {
      const registryHost = host === this.base.host ? this.options.registry : host;
      return await this.options.trust.certificatesFor(registryHost);
    } catch (error) {
      if (!(error instanceof CaFileError)) throw error;
      throw new RegistryTlsError(this.options.reference, error.message);
    }
  }

  private async authenticate(headerValue: string): Promise<void> {
    const challenges = parseWwwAuthenticate(headerValue);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      this.authorization = `Bearer ${await this.requestToken(bearer)}`;
      return;
    }

    const credentials = this.options.credentials;
    if (challenges.some((challenge) => challenge.scheme === 'basic')) {
      if (credentials === undefined) throw this.credentialsNeeded();
      this.authorization = basicAuthorization(credentials);
      return;
    }
    const schemes = challenges.map((challenge) => challenge.scheme).join(', ') || 'none';
    throw new ImageAuthError(
      this.options.reference,
      `registry ${this.options.registry} asks for authentication scheme(s) ${schemes}; ` +
        'only Basic and Bearer are supported',
    );
  }

  /** The distribution token flow: GET realm?service&scope, with basic credentials if any. */
  private async requestToken(challenge: Challenge): Promise<string> {
    const ours = repositoryScope(this.options.repository, this.options.actions);
    const scopes = [ours];
    if (challenge.params.scope && challenge.params.scope !== ours) {
      scopes.push(challenge.params.scope);
    }
    let url: URL;
    try {
      url = tokenRequestUrl(challenge, scopes);
    } catch {
      return this.protocolError('bearer challenge has an invalid realm URL');
    }

    const credentials = this.options.credentials;
    const headers = credentials ? { authorization: basicAuthorization(credentials) } : {};
    const response = await this.sendFollowing(
      { method: 'GET', target: url },
      headers.authorization,
    );
    if (response.status === 401 || response.status === 403) {
      await discardBody(response);
      throw this.authRefused(`token service ${url.host}`);
    }
    if (response.status !== 200) return this.failOnStatus(response, { method: 'GET', target: url });

    const body = await this.readLimited(response, MAX_TOKEN_BYTES, 'token answer');
    const token = parseTokenResponse(body, Date.now());
    if (token === undefined) return this.protocolError(`token service ${url.host} sent no token`);
    return token.token;
  }

  private urlFor(path: string): URL {
    return new URL(`v2/${this.options.repository}/${path}`, this.base);
  }

  private checkManifestDigest(bytes: Buffer, expected?: string, announced?: string): string {
    if (expected !== undefined) {
      const actual = digestOf(bytes, splitDigest(expected).algorithm);
      if (actual !== expected) this.digestMismatch('manifest', expected, actual);
      return expected;
    }
    const computed = digestOf(bytes);
    if (announced !== undefined && isDigest(announced)) {
      const actual = digestOf(bytes, splitDigest(announced).algorithm);
      if (actual !== announced) this.digestMismatch('manifest', announced, actual);
    }
    return computed;
  }

  private checkDeclaredSize(descriptor: Descriptor, maxBytes: number, what: string): void {
    if (descriptor.size <= maxBytes) return;
    throw new ImageFormatError(
      this.options.reference,
      `${what} ${descriptor.digest} is ${descriptor.size} bytes; the limit is ${maxBytes}`,
    );
  }

  private readLimited(response: HttpResponse, maxBytes: number, what: string): Promise<Buffer> {
    return this.limited(what, () => readBody(response, maxBytes), response.url);
  }

  /** Runs a body read, mapping its failures: too large, or the connection broke. */
  private async limited<T>(what: string, read: () => Promise<T>, url = this.base): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        const message = `${what} is larger than the limit of ${error.limit} bytes`;
        throw new ImageFormatError(this.options.reference, message);
      }
      if (error instanceof NetworkError) throw this.networkFailure(url, error);
      throw error;
    }
  }

  private async failOnStatus(response: HttpResponse, spec: ExchangeSpec): Promise<never> {
    const detail = await this.errorDetail(response);
    const status = response.status;
    if (status === 404) {
      throw new ImageNotFoundError(
        this.options.reference,
        `registry ${this.options.registry} has no ${describeTarget(spec.target)} in repository ` +
          `${this.options.repository}${detail}`,
      );
    }
    throw new RegistryError(
      this.options.reference,
      `registry ${this.options.registry} answered HTTP ${status} to ${spec.method}${detail}`,
      status,
    );
  }

  /** The registry's `errors[].code: message`, redacted, for the end of a message. */
  private async errorDetail(response: HttpResponse): Promise<string> {
    const body = await readBody(response, MAX_ERROR_BODY_BYTES).catch(() => Buffer.alloc(0));
    let text: string;
    try {
      const errors = JSON.parse(body.toString('utf8')).errors as Array<Record<string, unknown>>;
      text = errors.map((entry) => `${entry.code}: ${entry.message}`).join('; ');
    } catch {
      return '';
    }
    const credentials = this.options.credentials;
    const bearer = this.authorization?.replace(/^Bearer /, '');
    const clean = redact(text, [credentials?.password, credentials?.username, bearer]);
    return clean === '' ? '' : ` (${clean.slice(0, 300)})`;
  }

  private networkFailure(url: URL, error: unknown): Error {
    if (!(error instanceof NetworkError)) return error as Error;
    const reference = this.options.reference;
    if (error.kind === 'tls') {
      const hint =
        `set registries.caFiles["${url.host}"] to the registry's CA, or list the host in ` +
        'registries.insecure if it serves plain HTTP';
      const message = `TLS connection to ${url.host} failed (${error.errorCode}); ${hint}`;
      return new RegistryTlsError(reference, message, { cause: error });
    }
    const message = `registry ${url.host} is unreachable: ${error.message}`;
    return new RegistryUnreachableError(reference, message, { cause: error });
  }

  private digestMismatch(what: string, expected: string, actual: string): never {
    throw new ImageDigestError(this.options.reference, what, expected, actual);
  }

  private protocolError(problem: string): never {
    throw new RegistryError(
      this.options.reference,
      `registry ${this.options.registry}: ${problem}`,
    );
  }

  private authRefused(who = `registry ${this.options.registry}`): ImageAuthError {
    const credentials = this.options.credentials;
    const message = credentials
      ? `${who} refused the credentials of ${credentials.source} for ${this.describeAccess()}; ` +
        'check the user name and password in that secret and their access to the repository'
      : `${who} refused anonymous ${this.describeAccess()}; the repository may be private ` +
        '(set imagepullsecret) or may not exist';
    return new ImageAuthError(this.options.reference, message);
  }

  private credentialsNeeded(): ImageAuthError {
    return new ImageAuthError(
      this.options.reference,
      `registry ${this.options.registry} requires credentials; set imagepullsecret`,
    );
  }

  private credentialsHint(): string {
    return this.options.credentials
      ? ` with the credentials of ${this.options.credentials.source}`
      : '';
  }

  private describeAccess(): string {
    return `${this.options.actions.join('/')} access to ${this.options.repository}`;
  }
}

function describeTarget(target: string | URL): string {
  if (typeof target !== 'string') return 'such upload';
  const [collection, name] = target.split('/');
  if (collection === 'manifests') return isDigest(name) ? `manifest ${name}` : `tag ${name}`;
  return `blob ${name}`;
}

function header(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Connection failures and overloaded registries are worth another try; nothing else is. */
function isTransient(error: unknown): boolean {
  if (error instanceof RegistryUnreachableError) return true;
  if (!(error instanceof RegistryError) || error.status === undefined) return false;
  return error.status === 429 || (error.status >= 500 && error.status !== 501);
}
