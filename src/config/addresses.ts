// Checks of host and wake addresses and MACs, without zod: the schema (fields.ts) refines with them, and the wake code
// (src/wake/wake.ts) applies the same check where a packet leaves, on the run path that loads no zod.
import { isIP } from 'node:net';
import { MAC } from './mac.js';
import { shownName } from './shown.js';

/** Why a dotted-number address is not an IPv4 address (999.1.1.1, 10.0.0, 01.2.3.4), or undefined. */
export function ipv4Problem(a: string): string | undefined {
  if (!/^[0-9.]+$/.test(a)) return undefined;
  const parts = a.split('.');
  if (parts.length !== 4) return `${shownName(a)} is not an IPv4 address (expected four numbers 0-255 separated by dots)`;
  if (parts.some((p) => p === '' || Number(p) > 255 || (p.length > 1 && p.startsWith('0'))))
    return `${shownName(a)} is not an IPv4 address (each of its four numbers must be 0-255, without leading zeros)`;
  return undefined;
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
// What inet_aton would still read as an address (0x7f.1, 2130706433, 127.1): never a name, and not a form we accept.
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/i;

/** Why `a` is neither an IP literal nor a DNS name, or undefined. `[v6]` is accepted as an IPv6 literal. */
function addressSyntaxProblem(a: string): string | undefined {
  if (a === '') return 'an empty address';
  if (a.startsWith('[') || a.endsWith(']')) {
    if (!(a.startsWith('[') && a.endsWith(']'))) return `${shownName(a)} has an unbalanced bracket (write an IPv6 address with both [ ] or neither)`;
    return isIP(a.slice(1, -1)) === 6 ? undefined : `${shownName(a)}: expected an IPv6 address inside [ ]`;
  }
  if (isIP(a) !== 0) return undefined;
  const v4 = ipv4Problem(a);
  if (v4 !== undefined) return v4;
  if (/^[^:]+:[0-9]*$/.test(a)) return `${shownName(a)} has a port in the address: put the port in \`port\``;
  if (a.includes(':')) return `${shownName(a)} is not an IPv6 address`;
  if (a.length > 253) return `a host name is at most 253 characters (this one has ${a.length})`;
  const labels = a.split('.');
  const long = labels.find((l) => l.length > 63);
  if (long !== undefined) return `each part of a host name is at most 63 characters (${shownName(long, 20)} has ${long.length})`;
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined) {
    return bad === ''
      ? `${shownName(a)} has an empty part (a leading, trailing or doubled ".")`
      : `${shownName(a)} is not a host name: ${shownName(bad)} must be letters, digits and "-" (not at its start or end)`;
  }
  if (labels.every((l) => NUMERIC_LABEL.test(l)) || /^[0-9]+$/.test(labels[labels.length - 1]!)) {
    return `${shownName(a)} is neither an IPv4 address of four decimal numbers (e.g. 127.0.0.1) nor a host name (its last part is not all digits)`;
  }
  return undefined;
}

const unbracketed = (a: string) => (a.startsWith('[') && a.endsWith(']') ? a.slice(1, -1) : a);

/** The IPv4 address inside an IPv4-mapped IPv6 literal (::ffff:255.255.255.255, ::ffff:ffff:ffff, 0:0:0:0:0:ffff:…),
 *  or undefined. The URL parser gives IPv6 its one canonical spelling. */
export function mappedIpv4(ip: string): string | undefined {
  if (isIP(ip) !== 6) return undefined;
  const m = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(new URL(`http://[${ip}]/`).hostname);
  if (m === null) return undefined;
  const [hi, lo] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16)];
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

/** Why `a` is not a host name or address hozo can connect to, or undefined. */
export function hostAddressProblem(a: string): string | undefined {
  const syntax = addressSyntaxProblem(a);
  if (syntax !== undefined) return syntax;
  const ip = unbracketed(a);
  const mapped = mappedIpv4(ip);
  if (mapped !== undefined) return `${shownName(a)} is an IPv4-mapped IPv6 address: write the IPv4 address itself (${mapped})`;
  if (ip === '0.0.0.0') return '0.0.0.0 is not an address a box can have';
  if (isIP(ip) === 6 && /^[0:]+$/.test(ip)) return ':: (the unspecified address) is not an address a box can have';
  return undefined;
}

/** The limited broadcast: never a wake address (tests refer to it by this name, so none carries an address it could
 *  send to). */
export const LIMITED_BROADCAST = '255.255.255.255';

/** Why `a` is not where a magic packet may go, or undefined: an IP literal, not multicast, not the limited broadcast. */
export function wakeAddressProblem(a: string): string | undefined {
  if (a === LIMITED_BROADCAST)
    return `the limited broadcast ${LIMITED_BROADCAST} is refused (it reaches every network this machine is on); give the box LAN's broadcast address, e.g. 192.168.1.255`;
  const problem = hostAddressProblem(a);
  if (problem !== undefined) return problem;
  const ip = unbracketed(a);
  const kind = isIP(ip);
  if (kind === 0) return `${shownName(a)} is a host name; expected an IP address (the box LAN's broadcast address, e.g. 192.168.1.255)`;
  if (kind === 4 && Number(ip.split('.')[0]) >= 224 && Number(ip.split('.')[0]) <= 239)
    return `${shownName(a)} is a multicast address (224.0.0.0/4); give the box LAN's broadcast address, e.g. 192.168.1.255`;
  if (kind === 6 && /^ff/i.test(ip)) return `${shownName(a)} is an IPv6 multicast address (ff00::/8); give the box's own address`;
  return undefined;
}

/** Why `mac` is not the MAC of a NIC (malformed, broadcast, all zeros, multicast), or undefined. */
export function macProblem(mac: string): string | undefined {
  if (!MAC.test(mac)) return 'expected a MAC address like 52:54:00:7a:0b:01';
  const bytes = mac.split(/[:-]/).map((b) => parseInt(b, 16));
  if (bytes.every((b) => b === 0xff)) return `${mac} is the broadcast MAC, not a NIC's`;
  if (bytes.every((b) => b === 0)) return `${mac} is all zeros, not a NIC's MAC`;
  if ((bytes[0]! & 1) === 1) return `${mac} is a multicast MAC (its first byte is odd), not a NIC's`;
  return undefined;
}
