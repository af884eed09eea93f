import dns from 'node:dns';
import net from 'node:net';

/**
 * Where destinations may send requests (SSRF protection). Refused unless allowed:
 * - link-local and cloud metadata (169.254.0.0/16 incl. 169.254.169.254, fe80::/10, fd00:ec2::254, 100.100.100.200,
 *   192.0.0.192, and names such as metadata.google.internal): TRIBUTARY_DESTINATIONS_ALLOW_LINK_LOCAL=1;
 * - private, loopback and unspecified (10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 0/8, ::1, ::, fc00::/7, and the
 *   names that resolve to them, such as localhost): TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE=1.
 * Multicast, broadcast and reserved addresses (224/4, 240/4, ff00::/8) are always refused.
 * IPv4 inside IPv6 (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d) is judged as the IPv4 address it carries.
 *
 * `checkOutgoingUrl` judges a URL as written (scheme, literal address, known names); the address a request actually
 * connects to is judged again by `guardedLookup`, the DNS lookup every destination request uses, so a name that
 * resolves (or later re-resolves) to a refused address is refused at connect time.
 */
export interface OutgoingPolicy {
  allowPrivate: boolean;
  allowLinkLocal: boolean;
}

export const ALLOW_PRIVATE_ENV = 'TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE';
export const ALLOW_LINK_LOCAL_ENV = 'TRIBUTARY_DESTINATIONS_ALLOW_LINK_LOCAL';

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = (env[name] ?? '').trim().toLowerCase();
  if (v === '' || v === '0' || v === 'false' || v === 'no') return false;
  if (v === '1' || v === 'true' || v === 'yes') return true;
  throw new Error(`${name} must be 1 or 0, got "${env[name]}"`);
}

export function outgoingPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): OutgoingPolicy {
  return { allowPrivate: flag(env, ALLOW_PRIVATE_ENV), allowLinkLocal: flag(env, ALLOW_LINK_LOCAL_ENV) };
}

/** Host names of cloud metadata services (compared lower-case, without a trailing dot). */
const METADATA_NAMES = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.com',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
]);

type Category = 'link-local' | 'private' | 'reserved' | null;

/** The 16 bytes of an IPv6 address (net.isIPv6 true), dotted IPv4 tails included. */
function ipv6Bytes(addr: string): number[] {
  let s = addr.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail = s.slice(lastColon + 1).split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const words = (p: string | undefined) => (p ? p.split(':').filter((w) => w !== '').map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const r = words(rest);
  const all = rest === undefined ? h : [...h, ...new Array(8 - h.length - r.length).fill(0), ...r];
  const bytes = all.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function ipv4Category(b: number[]): Category {
  const [a, c] = b;
  if (a === 169 && c === 254) return 'link-local';
  if (a === 100 && c === 100 && b[2] === 100 && b[3] === 200) return 'link-local'; // Alibaba Cloud metadata
  if (a === 192 && c === 0 && b[2] === 0 && b[3] === 192) return 'link-local'; // Oracle Cloud metadata
  if (a === 10 || a === 127 || a === 0) return 'private';
  if (a === 172 && c >= 16 && c <= 31) return 'private';
  if (a === 192 && c === 168) return 'private';
  if (a === 100 && c >= 64 && c <= 127) return 'private'; // carrier-grade NAT, shared address space
  if (a >= 224) return 'reserved'; // multicast, reserved, broadcast
  return null;
}

function ipv6Category(b: number[]): Category {
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  // IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d (not :: and ::1), NAT64 64:ff9b::a.b.c.d.
  const mapped = zeros(0, 10) && b[10] === 0xff && b[11] === 0xff;
  const compatible = zeros(0, 12) && !zeros(12, 15);
  const nat64 = b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12);
  if (mapped || compatible || nat64) return ipv4Category(b.slice(12));
  if (zeros(0, 15) && (b[15] === 0 || b[15] === 1)) return 'private'; // :: and ::1
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return 'link-local'; // fe80::/10
  if (b[0] === 0xfd && b[1] === 0x00 && b[2] === 0x0e && b[3] === 0xc2 && zeros(4, 14) && b[14] === 0x02 && b[15] === 0x54) return 'link-local'; // AWS fd00:ec2::254
  if ((b[0] & 0xfe) === 0xfc) return 'private'; // fc00::/7 unique local
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0xc0) return 'private'; // fec0::/10 site-local (deprecated)
  if (b[0] === 0xff) return 'reserved'; // multicast
  return null;
}

function categoryOf(address: string): Category {
  const v = net.isIP(address);
  if (v === 4) return ipv4Category(address.split('.').map(Number));
  if (v === 6) return ipv6Category(ipv6Bytes(address));
  return 'reserved';
}

function refusal(category: Category, what: string, policy: OutgoingPolicy): string | null {
  if (category === 'link-local' && !policy.allowLinkLocal) {
    return `${what} is a link-local or cloud metadata address; set ${ALLOW_LINK_LOCAL_ENV}=1 to allow it`;
  }
  if (category === 'private' && !policy.allowPrivate) {
    return `${what} is a private or loopback address; set ${ALLOW_PRIVATE_ENV}=1 to allow private ranges`;
  }
  if (category === 'reserved') return `${what} is a multicast, broadcast or reserved address`;
  return null;
}

/** Why a request may not connect to this IP address, or null if it may. */
export function addressRefusal(address: string, policy: OutgoingPolicy): string | null {
  return refusal(categoryOf(address), address, policy);
}

/**
 * Why a destination may not send to this URL as written, or null if it may (the address it resolves to is judged
 * when connecting, see guardedLookup): an http(s) URL whose literal address or known name is not refused.
 */
export function checkOutgoingUrl(url: string, policy: OutgoingPolicy): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a valid URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `must be an http or https URL, got ${u.protocol.replace(/:$/, '')}`;
  const host = u.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (host === '') return 'has no host';
  if (net.isIP(host)) return addressRefusal(host, policy);
  if (METADATA_NAMES.has(host)) return refusal('link-local', host, policy);
  return null;
}

export class OutgoingAddressRefused extends Error {
  readonly code = 'EREFUSEDADDRESS';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** How a name becomes addresses: dns.lookup (the system resolver, /etc/hosts included) unless a test gives another. */
export type AddressResolver = (hostname: string, options: dns.LookupOptions, callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => void;

const systemResolver: AddressResolver = (hostname, options, callback) => dns.lookup(hostname, { ...options, all: true }, callback);

/**
 * A `lookup` for http(s).request / net.connect: resolves like dns.lookup and hands on only the addresses the policy
 * allows; when none is left the connection fails with the refusal. This is what makes the check apply to the
 * address connected to (a name that resolves to 127.0.0.1 or 169.254.169.254 is refused, however it got there).
 */
export function guardedLookup(policy: OutgoingPolicy, resolve: AddressResolver = systemResolver) {
  return (hostname: string, options: dns.LookupOptions | number | LookupCallback, callback?: LookupCallback): void => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const opts: dns.LookupOptions = typeof options === 'object' ? options : typeof options === 'number' ? { family: options } : {};
    const name = hostname.replace(/\.$/, '').toLowerCase();
    if (METADATA_NAMES.has(name)) {
      const why = refusal('link-local', name, policy);
      if (why) return cb(Object.assign(new OutgoingAddressRefused(why), { hostname }), '', 0);
    }
    resolve(hostname, opts, (err, addresses) => {
      if (err) return cb(err, '', 0);
      const allowed = addresses.filter((a) => addressRefusal(a.address, policy) === null);
      if (allowed.length === 0) {
        const first = addresses[0];
        const why = first ? addressRefusal(first.address, policy)! : 'resolves to no address';
        return cb(Object.assign(new OutgoingAddressRefused(`${hostname} resolves to ${why}`), { hostname }), '', 0);
      }
      if (opts.all) return cb(null, allowed);
      cb(null, allowed[0].address, allowed[0].family);
    });
  };
}
