/**
 * What can go wrong with a bytecode image. Each class has one stable code; messages name the
 * image reference and say what to change. No message ever holds a credential.
 */
import { BpfdError } from '../errors.js';

/** Base of every image failure; `reference` is the image as the manifest wrote it. */
export class ImageError extends BpfdError {
  readonly reference: string;

  constructor(code: string, reference: string, message: string, options?: { cause?: unknown }) {
    super(code, `image ${reference}: ${message}`, options);
    this.reference = reference;
  }
}

/** `bytecode.image.url` is not a valid image reference. */
export class ImageReferenceError extends ImageError {
  constructor(reference: string, message: string) {
    super('BPFD_E_IMAGE_REFERENCE', reference, message);
  }
}

/** The registry has no such repository, tag or digest. */
export class ImageNotFoundError extends ImageError {
  constructor(reference: string, message: string) {
    super('BPFD_E_IMAGE_NOT_FOUND', reference, message);
  }
}

/** `imagepullpolicy: Never` and the image is not in the node's cache. */
export class ImageNotPresentError extends ImageError {
  constructor(reference: string) {
    super(
      'BPFD_E_IMAGE_NOT_PRESENT',
      reference,
      'imagepullpolicy is Never and the image is not in the node cache; ' +
        'pull it once with IfNotPresent or Always',
    );
  }
}

/** The registry or its token service refused the credentials, or asked for some. */
export class ImageAuthError extends ImageError {
  constructor(reference: string, message: string) {
    super('BPFD_E_IMAGE_AUTH', reference, message);
  }
}

/** The pull secret named by `imagepullsecret` is missing or unreadable. */
export class ImagePullSecretError extends ImageError {
  constructor(reference: string, message: string) {
    super('BPFD_E_IMAGE_SECRET', reference, message);
  }
}

/** Content whose digest differs from the one it was asked for. */
export class ImageDigestError extends ImageError {
  readonly expected: string;
  readonly actual: string;

  constructor(reference: string, what: string, expected: string, actual: string) {
    super(
      'BPFD_E_IMAGE_DIGEST',
      reference,
      `${what} has digest ${actual}, expected ${expected}; ` +
        'the registry served corrupted or altered content, nothing was cached',
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** No connection to the registry (refused, reset, timed out, name not resolved). */
export class RegistryUnreachableError extends ImageError {
  constructor(reference: string, message: string, options?: { cause?: unknown }) {
    super('BPFD_E_IMAGE_UNREACHABLE', reference, message, options);
  }
}

/** The TLS handshake failed: certificate not trusted, wrong host name, plain HTTP server. */
export class RegistryTlsError extends ImageError {
  constructor(reference: string, message: string, options?: { cause?: unknown }) {
    super('BPFD_E_IMAGE_TLS', reference, message, options);
  }
}

/** The registry answered with something the distribution API does not allow here. */
export class RegistryError extends ImageError {
  readonly status: number | undefined;

  constructor(reference: string, message: string, status?: number) {
    super('BPFD_E_IMAGE_REGISTRY', reference, message);
    this.status = status;
  }
}

/** The image is not a bytecode image: wrong manifest, no or several objects, unsafe layer. */
export class ImageFormatError extends ImageError {
  constructor(reference: string, message: string, options?: { cause?: unknown }) {
    super('BPFD_E_IMAGE_FORMAT', reference, message, options);
  }
}

/** The node's image cache cannot be read or written. */
export class ImageCacheError extends ImageError {
  constructor(reference: string, message: string, options?: { cause?: unknown }) {
    super('BPFD_E_IMAGE_CACHE', reference, message, options);
  }
}

/** `bpfd image build` or `bpfd image push` cannot use its input (object file, layout dir). */
export class ImageBuildError extends BpfdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BPFD_E_IMAGE_BUILD', message, options);
  }
}
