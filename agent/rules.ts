// Constants the agent's config schema (config.ts, zod) shares with the code that loads and scopes it (config-cache.ts,
// scope.ts, main.ts). No imports: a leaf, so that none of those modules has to import another for a constant.

/** A controller section's name (agent config `controllers`, `serve --controller NAME`). */
export const CONTROLLER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

export const DEFAULT_AGENT_CONFIG_PATH = '/etc/hozo-agent/config.json';
