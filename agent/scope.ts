// Per-controller sections (agent config `controllers`): each controller key's forced command names its section
// (`hozo-agent serve --controller NAME`), which has its own roots, leases and limits. Its requests see and touch only
// those: datasets outside its roots are refused by the parser as for any key, and its leases are stored as
// "NAME:<id>" (names cannot contain ':'), so it cannot name, renew, release or list another controller's lease.
// Box-wide facts stay box-wide: the box powers off only after the last lease of any controller.
import type { AgentConfig } from './config.js';
import type { Lease } from './state.js';
import type { AgentContext } from './context.js';

export { CONTROLLER_NAME } from './rules.js';

/** The id a request's lease is stored under. */
export const storedLeaseId = (ctx: AgentContext, id: string): string => (ctx.controller === undefined ? id : `${ctx.controller}:${id}`);

/** The leases this request may see, with the ids it knows them by. */
export function ownLeases(ctx: AgentContext, leases: readonly Lease[]): Lease[] {
  if (ctx.controller === undefined) return [...leases];
  const prefix = `${ctx.controller}:`;
  return leases.filter((l) => l.id.startsWith(prefix)).map((l) => ({ ...l, id: l.id.slice(prefix.length) }));
}

/** How a lease is named to this request: its own id, or nothing but the fact that another controller holds one. */
export function leaseLabel(ctx: AgentContext, storedId: string): string {
  if (ctx.controller === undefined) return `lease "${storedId}"`;
  const prefix = `${ctx.controller}:`;
  return storedId.startsWith(prefix) ? `lease "${storedId.slice(prefix.length)}"` : "another controller's lease";
}

/**
 * The config one controller's requests run with: its own roots and limits (the box's pools, retention and power
 * settings stay the box's). A string when there is no such section; with sections, a key without one is refused.
 */
export function scopedConfig(config: AgentConfig, controller: string | undefined): AgentConfig | string {
  const sections = config.controllers ?? {};
  if (controller === undefined) {
    return Object.keys(sections).length === 0
      ? config
      : `this box has a section per controller (${Object.keys(sections).join(', ')}): the key's forced command must name one (hozo-agent serve --controller NAME)`;
  }
  // Own keys only: a name like toString or constructor is not a section.
  const s = Object.hasOwn(sections, controller) ? sections[controller] : undefined;
  if (s === undefined) return `no controller section "${controller}" in the agent config (known: ${Object.keys(sections).join(', ') || 'none'})`;
  return {
    ...config,
    roots: s.roots,
    allowRollback: s.allowRollback ?? config.allowRollback,
    appendOnly: s.appendOnly ?? config.appendOnly,
    maxLeases: s.maxLeases ?? config.maxLeases,
    maxReceives: s.maxReceives ?? config.maxReceives,
    maxLeaseSeconds: s.maxLeaseSeconds ?? config.maxLeaseSeconds,
  };
}
