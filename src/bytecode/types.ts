/** Small types shared by the bytecode modules. */

/** pino's shape: fields first, then the message. */
export interface ImageLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export { goArchitecture } from '../platform.js';
