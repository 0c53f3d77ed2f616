// Who may drive the API from a browser (issue 19): without a token the daemon on loopback
// answered any Host (a DNS-rebinding page is same-origin with it) and cross-site POSTs with
// no body (which need no CORS preflight) invoked and evicted functions. A request is refused
// (403 naming why) when
//  - it comes over TCP with a Host that is a name other than localhost / *.localhost or one
//    listed in api.allowedHosts (an IP literal cannot be rebound: a rebinding attack always
//    arrives with a name whose DNS the attacker controls);
//  - its Origin is not the daemon's own (the origin a page served by the daemon has);
//  - the browser says it is cross-site or same-site (Sec-Fetch-Site: another port of
//    localhost is same-site but another origin).
// Clients that are not browsers send neither Origin nor Sec-Fetch-Site. Pure.

import { isIP } from 'node:net';

export interface CallerHeaders {
  host?: string;
  origin?: string;
  secFetchSite?: string;
  /** the request came over the API's unix socket (no browser reaches it; its file mode decides) */
  viaUnixSocket: boolean;
  /** a route meant for any web page (public by design, e.g. OpenWhisk web actions): Origin and Sec-Fetch-Site are not checked, Host is */
  crossOriginAllowed?: boolean;
}

export type GuardOutcome = { ok: true } | { ok: false; field: 'host' | 'origin' | 'sec-fetch-site'; reason: string };

const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$/;

/** The host name of a Host header (lower case, IPv6 without brackets), undefined when malformed. */
export function hostName(host: string): string | undefined {
  const m = HOST.exec(host.trim());
  if (!m) return undefined;
  return m[1]!.replace(/^\[|\]$/g, '').toLowerCase();
}

/** True for names that always mean this machine, and for IP literals. */
function alwaysAllowed(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0;
}

export function checkCaller(h: CallerHeaders, allowedHosts: readonly string[]): GuardOutcome {
  const site = h.crossOriginAllowed ? undefined : h.secFetchSite?.toLowerCase();
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { ok: false, field: 'sec-fetch-site', reason: `a ${site} browser request: only pages the daemon serves itself may call its API` };
  }
  if (!h.viaUnixSocket && h.host !== undefined) {
    const name = hostName(h.host);
    if (name === undefined) return { ok: false, field: 'host', reason: 'malformed Host header' };
    if (!alwaysAllowed(name) && !allowedHosts.includes('*') && !allowedHosts.some((a) => a.toLowerCase() === name)) {
      return { ok: false, field: 'host', reason: `Host ${name} is not a name of this daemon (a DNS-rebinding page would look like this): list it in api.allowedHosts` };
    }
  }
  if (h.origin !== undefined && !h.crossOriginAllowed) {
    const own = h.host?.trim().toLowerCase();
    let theirs: string | undefined;
    try {
      theirs = h.origin === 'null' ? undefined : new URL(h.origin).host.toLowerCase();
    } catch {
      theirs = undefined;
    }
    if (theirs === undefined || own === undefined || normalHost(theirs) !== normalHost(own)) {
      return { ok: false, field: 'origin', reason: `cross-origin request from ${h.origin.slice(0, 200)}: only pages the daemon serves itself may call its API` };
    }
  }
  return { ok: true };
}

/** host[:port] with HTTP's default port dropped, as browsers write an Origin. */
function normalHost(h: string): string {
  return h.endsWith(':80') ? h.slice(0, -3) : h;
}
