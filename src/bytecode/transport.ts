/**
 * One HTTP(S) exchange with a registry, on Node's http/https modules: Node's global `fetch`
 * has no public way to trust an extra CA for one host without the undici package. No
 * redirects are followed here and no body is read; the caller decides both.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';

import { DigestHasher } from './digest.js';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  /** PEM certificates to trust for an https URL; undefined: Node's defaults. */
  ca?: string[];
  /** Socket inactivity limit, while connecting and while the response streams. */
  timeoutMs: number;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: URL;
  body: http.IncomingMessage;
}

/** Why no response came back; `tls` failures are configuration problems, never retried. */
export class NetworkError extends Error {
  readonly kind: 'unreachable' | 'tls' | 'timeout';
  readonly errorCode: string | undefined;

  constructor(kind: NetworkError['kind'], message: string, errorCode?: string) {
    super(message);
    this.kind = kind;
    this.errorCode = errorCode;
  }
}

/** A body bigger than the caller allows. */
export class BodyTooLargeError extends Error {
  readonly limit: number;

  constructor(limit: number) {
    super(`more than ${limit} bytes`);
    this.limit = limit;
  }
}

/** Agents live as long as one client so that a pull reuses its connections and then ends. */
export interface Agents {
  http: http.Agent;
  https: https.Agent;
}

export function createAgents(): Agents {
  return {
    http: new http.Agent({ keepAlive: true, maxSockets: 4 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 4 }),
  };
}

export function destroyAgents(agents: Agents): void {
  agents.http.destroy();
  agents.https.destroy();
}

export function sendHttpRequest(request: HttpRequest, agents: Agents): Promise<HttpResponse> {
  const secure = request.url.protocol === 'https:';
  const headers = { ...request.headers };
  if (request.body !== undefined) headers['content-length'] = String(request.body.length);

  const options: https.RequestOptions = {
    method: request.method,
    headers,
    agent: secure ? agents.https : agents.http,
    ...(secure && request.ca !== undefined ? { ca: request.ca } : {}),
  };

  return new Promise((resolve, reject) => {
    const send = secure ? https.request : http.request;
    const outgoing = send(request.url, options, (body) => {
      body.setTimeout(request.timeoutMs, () => body.destroy(timeoutError(request)));
      resolve({ status: body.statusCode ?? 0, headers: body.headers, url: request.url, body });
    });
    outgoing.setTimeout(request.timeoutMs, () => outgoing.destroy(timeoutError(request)));
    outgoing.on('error', (error) => reject(asNetworkError(error)));
    outgoing.end(request.body);
  });
}

/** Reads a whole body, refusing more than `maxBytes` (checked on Content-Length first). */
export async function readBody(response: HttpResponse, maxBytes: number): Promise<Buffer> {
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.body.destroy();
    throw new BodyTooLargeError(maxBytes);
  }

  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body) {
      total += (chunk as Buffer).length;
      if (total > maxBytes) {
        response.body.destroy();
        throw new BodyTooLargeError(maxBytes);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    throw error instanceof BodyTooLargeError ? error : asNetworkError(error);
  }
  return Buffer.concat(chunks);
}

/** Throws the body away so the connection can be reused. */
export async function discardBody(response: HttpResponse): Promise<void> {
  try {
    for await (const chunk of response.body) void chunk;
  } catch {
    // A body we do not want cannot fail the exchange.
  }
}

/**
 * Streams a body into a new file while hashing it; refuses more than `maxBytes`. Returns the
 * digest of what was written.
 */
export async function saveBody(
  response: HttpResponse,
  file: string,
  hasher: DigestHasher,
  maxBytes: number,
): Promise<string> {
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.body.destroy();
    throw new BodyTooLargeError(maxBytes);
  }

  const output = fs.createWriteStream(file, { flags: 'wx', mode: 0o600 });
  const counter = new Writable({
    write(chunk: Buffer, _encoding, done) {
      hasher.update(chunk);
      if (hasher.bytes > maxBytes) return done(new BodyTooLargeError(maxBytes));
      output.write(chunk, done);
    },
    final(done) {
      output.end(done);
    },
  });
  try {
    await pipeline(response.body, counter);
  } catch (error) {
    output.destroy();
    // Errors of the file carry its path; they are the cache's, not the network's.
    if (error instanceof BodyTooLargeError || hasPath(error)) throw error;
    throw asNetworkError(error);
  }
  return hasher.digest();
}

function hasPath(error: unknown): boolean {
  return typeof (error as { path?: unknown } | null)?.path === 'string';
}

function timeoutError(request: HttpRequest): NetworkError {
  const seconds = request.timeoutMs / 1000;
  return new NetworkError('timeout', `no answer within ${seconds} s`, 'ETIMEDOUT');
}

const TLS_ERROR_PATTERN = /CERT|^ERR_SSL|^ERR_TLS|^EPROTO$|SELF_SIGNED|UNABLE_TO_VERIFY/;

/** Network failures in one shape: which kind, and a message that holds no request data. */
export function asNetworkError(error: unknown): NetworkError {
  if (error instanceof NetworkError) return error;

  const code = (error as { code?: unknown }).code;
  const errorCode = typeof code === 'string' ? code : undefined;
  const message = (error as Error).message ?? String(error);
  if (errorCode !== undefined && TLS_ERROR_PATTERN.test(errorCode)) {
    return new NetworkError('tls', message, errorCode);
  }
  return new NetworkError('unreachable', message, errorCode);
}
