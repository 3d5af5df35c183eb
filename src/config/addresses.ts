// Checks of host and wake addresses, without zod: the schema (fields.ts) refines with them, and the wake code
// (src/wake/wake.ts) applies the same check where a packet leaves, on the run path that loads no zod.

/** Why a dotted-number address is not an IPv4 address (999.1.1.1, 10.0.0, 01.2.3.4), or undefined. */
export function ipv4Problem(a: string): string | undefined {
  if (!/^[0-9.]+$/.test(a)) return undefined;
  const parts = a.split('.');
  if (parts.length !== 4) return `"${a}" is not an IPv4 address (expected four numbers 0-255 separated by dots)`;
  if (parts.some((p) => p === '' || Number(p) > 255 || (p.length > 1 && p.startsWith('0')))) return `"${a}" is not an IPv4 address (each of its four numbers must be 0-255, without leading zeros)`;
  return undefined;
}

/** Why `a` is not a host name or address hozo can connect to, or undefined. */
export function hostAddressProblem(a: string): string | undefined {
  const v4 = ipv4Problem(a);
  if (v4 !== undefined) return v4;
  if (a === '0.0.0.0') return '0.0.0.0 is not an address a box can have';
  if (a.includes(':')) return undefined; // IPv6, checked by its pattern
  if (a.length > 253) return `a host name is at most 253 characters (this one has ${a.length})`;
  const long = a.split('.').find((l) => l.length > 63);
  if (long !== undefined) return `each part of a host name is at most 63 characters ("${long.slice(0, 20)}…" has ${long.length})`;
  return undefined;
}

/** The limited broadcast: never a wake address (tests refer to it by this name, so none carries an address it could
 *  send to). */
export const LIMITED_BROADCAST = '255.255.255.255';

/** Why `a` is not where a magic packet may go, or undefined. */
export function wakeAddressProblem(a: string): string | undefined {
  if (a === LIMITED_BROADCAST) return `the limited broadcast ${LIMITED_BROADCAST} is refused (it reaches every network this machine is on); give the box LAN's broadcast address, e.g. 192.168.1.255`;
  return hostAddressProblem(a);
}
