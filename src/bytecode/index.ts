export {
  ImageStore,
  PULL_POLICIES,
  type ImageRequest,
  type ImageStoreOptions,
  type PullPolicy,
  type ResolvedImage,
} from './store.js';
export { formatImageReference, parseImageReference, type ImageReference } from './reference.js';
export { buildImageLayout, type BuildImageOptions } from './layout.js';
export { pushImageLayout, type PushOptions } from './push.js';
export { imageCommand } from './cli.js';
export type { BytecodeLabels } from './manifest.js';
export type { ImageLogger } from './types.js';
export {
  ImageAuthError,
  ImageBuildError,
  ImageCacheError,
  ImageDigestError,
  ImageError,
  ImageFormatError,
  ImageNotFoundError,
  ImageNotPresentError,
  ImagePullSecretError,
  ImageReferenceError,
  RegistryError,
  RegistryTlsError,
  RegistryUnreachableError,
} from './errors.js';
