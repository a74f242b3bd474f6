/**
 * The connection side of a registry client: requests with retries, redirects (credentials
 * stay with their origin), the 401 challenge answered with basic credentials or a bearer
 * token, TLS trust, and every failure turned into an ImageError that names the image and
 * holds no credential.
 */
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
import { isDigest } from './digest.js';
import {
  ImageAuthError,
  ImageFormatError,
  ImageNotFoundError,
  RegistryError,
  RegistryTlsError,
  RegistryUnreachableError,
} from './errors.js';
import { normalizeRegistryHost, registryEndpoint } from './reference.js';
import { withRetries, type RetryPolicy } from './retry.js';
import {
  BodyTooLargeError,
  createAgents,
  destroyAgents,
  discardBody,
  readBody,
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

export interface ExchangeSpec {
  method: HttpMethod;
  /** A path below `/v2/<repository>/`, or a full URL (upload locations). */
  target: string | URL;
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface Expectation {
  accept?: string;
  /** Statuses that count as success; [200] when not given. */
  expect?: number[];
  /** A 404 goes to `consume` instead of failing. */
  allowNotFound?: boolean;
}

export class RegistrySession {
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

  /**
   * One request with auth, redirects and retries; `consume` reads the successful answer. A
   * 404 is ImageNotFoundError unless `allowNotFound`.
   */
  exchange<T>(
    spec: ExchangeSpec,
    expectation: Expectation,
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
    const authorization = credentials ? basicAuthorization(credentials) : undefined;
    const response = await this.sendFollowing({ method: 'GET', target: url }, authorization);
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

  readLimited(response: HttpResponse, maxBytes: number, what: string): Promise<Buffer> {
    return this.limited(what, () => readBody(response, maxBytes), response.url);
  }

  /** Runs a body read, mapping its failures: too large, or the connection broke. */
  async limited<T>(what: string, read: () => Promise<T>, url = this.base): Promise<T> {
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

  protocolError(problem: string): never {
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
      `registry ${this.options.registry} requires credentials; set imagepullsecret to a ` +
        `secret with an entry for ${this.options.registry}`,
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
  if (typeof target !== 'string') return `resource ${target.pathname}`;
  const [collection, name] = target.split('/');
  if (collection === 'manifests') return isDigest(name) ? `manifest ${name}` : `tag ${name}`;
  return `blob ${name}`;
}

export function header(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Connection failures and overloaded registries are worth another try; nothing else is. */
function isTransient(error: unknown): boolean {
  if (error instanceof RegistryUnreachableError) return true;
  if (!(error instanceof RegistryError) || error.status === undefined) return false;
  return error.status === 429 || (error.status >= 500 && error.status !== 501);
}
