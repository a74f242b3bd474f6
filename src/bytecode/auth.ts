/**
 * Registry authentication: the `WWW-Authenticate` challenge (RFC 7235), HTTP basic
 * credentials and the bearer-token flow of the distribution token spec (ask the realm for a
 * token for a scope, with the basic credentials when there are some).
 */

export interface Challenge {
  /** Lower-case: `basic`, `bearer`. */
  scheme: string;
  /** Parameter names lower-case, values unquoted. */
  params: Record<string, string>;
}

export interface RegistryCredentials {
  username: string;
  password: string;
  /** Where they came from, for messages: `pull secret default/regcred`. */
  source: string;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
/** A token68 (`Basic abc==`) is the whole content of its challenge. */
const TOKEN68 = /^([A-Za-z0-9\-._~+/]+=*)\s*(?:,|$)/;

/**
 * Every challenge of a `WWW-Authenticate` header, e.g.
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
 * Unparseable input yields the challenges read so far.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const scanner = new Scanner(header);
  const challenges: Challenge[] = [];

  for (;;) {
    scanner.skip(/[\s,]/);
    const scheme = scanner.token();
    if (scheme === '') return challenges;

    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    scanner.skip(/\s/);
    const token68 = TOKEN68.exec(scanner.rest());
    if (token68) {
      challenge.params.token68 = token68[1];
      scanner.position += token68[1].length;
    } else {
      readParams(scanner, challenge);
    }
  }
}

/** `name=value` pairs up to the end or to the next challenge's scheme. */
function readParams(scanner: Scanner, challenge: Challenge): void {
  for (;;) {
    scanner.skip(/\s/);
    const mark = scanner.position;
    const name = scanner.token();
    scanner.skip(/\s/);
    if (name === '' || scanner.peek() !== '=') {
      scanner.position = mark;
      return;
    }

    scanner.position += 1;
    scanner.skip(/\s/);
    const value = scanner.peek() === '"' ? scanner.quoted() : scanner.token();
    challenge.params[name.toLowerCase()] = value;
    scanner.skip(/\s/);
    if (scanner.peek() !== ',') return;
    scanner.position += 1;
  }
}

class Scanner {
  position = 0;
  private readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  peek(): string {
    return this.text.charAt(this.position);
  }

  rest(): string {
    return this.text.slice(this.position);
  }

  skip(pattern: RegExp): void {
    while (this.position < this.text.length && pattern.test(this.peek())) this.position += 1;
  }

  take(pattern: RegExp): string {
    const start = this.position;
    this.skip(pattern);
    return this.text.slice(start, this.position);
  }

  token(): string {
    return this.take(TOKEN_CHAR);
  }

  /** A quoted-string starting at the current `"`, with backslash escapes resolved. */
  quoted(): string {
    let value = '';
    this.position += 1;
    while (this.position < this.text.length) {
      const char = this.peek();
      this.position += 1;
      if (char === '"') return value;
      if (char === '\\' && this.position < this.text.length) {
        value += this.peek();
        this.position += 1;
      } else {
        value += char;
      }
    }
    return value;
  }
}

export function basicAuthorization(credentials: RegistryCredentials): string {
  const pair = `${credentials.username}:${credentials.password}`;
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
}

/** The distribution spec's scope for one repository, e.g. `repository:bpfd/xdp:pull`. */
export function repositoryScope(repository: string, actions: string[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** The token-service URL for a bearer challenge: realm plus `service` and `scope` params. */
export function tokenRequestUrl(challenge: Challenge, scopes: string[]): URL {
  const url = new URL(challenge.params.realm);
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  return url;
}

/**
 * The token from a token-service answer (`token`, or OAuth2's `access_token`) and how long it
 * may be reused; undefined when the answer holds no token.
 */
export function parseTokenResponse(
  body: Buffer,
  now: number,
): { token: string; expiresAt: number } | undefined {
  let answer: unknown;
  try {
    answer = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof answer !== 'object' || answer === null) return undefined;

  const fields = answer as Record<string, unknown>;
  const token = typeof fields.token === 'string' ? fields.token : fields.access_token;
  if (typeof token !== 'string' || token === '') return undefined;

  // The token spec's default lifetime is 60 s; keep a margin for clock and transfer time.
  const expiresIn = typeof fields.expires_in === 'number' ? fields.expires_in : 60;
  return { token, expiresAt: now + Math.max(expiresIn - 10, 5) * 1000 };
}

/** Removes every occurrence of the secrets from text that came from a remote server. */
export function redact(text: string, secrets: Array<string | undefined>): string {
  let result = text;
  for (const secret of secrets) {
    if (secret === undefined || secret.length < 3) continue;
    result = result.split(secret).join('[redacted]');
  }
  return result;
}
