/** The node config file (`/etc/bpfd/config.yaml`): its schema, defaults and flag overrides. */
export { ConfigFileSchema, type ConfigFile } from './schema.js';
export {
  builtinNodeLabels,
  DEFAULT_CONFIG_FILE,
  loadConfig,
  type Config,
  type ConfigOverrides,
  type LoadConfigOptions,
} from './load.js';
