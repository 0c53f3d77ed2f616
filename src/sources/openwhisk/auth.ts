// OpenWhisk authenticates every call with HTTP Basic credentials "uuid:key".
// FaaSCell maps them onto the daemon's one token: the key must be the token
// (api.token / FAASCELL_TOKEN), the uuid is free and recorded as the activation's
// subject. `Authorization: Bearer TOKEN` (the native API's form) works too.
// Without a token (a daemon on loopback) any well-formed credentials, or none, pass.

import { timingSafeEqual } from 'node:crypto';

export type AuthOutcome = { ok: true; subject: string } | { ok: false; reason: string };

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Decide on one Authorization header (pure). */
export function checkAuth(header: string | undefined, token: string | undefined, anonymous: string): AuthOutcome {
  if (header === undefined || header.trim() === '') {
    return token ? { ok: false, reason: 'no Authorization header (send Basic credentials uuid:key, key = the daemon token)' } : { ok: true, subject: anonymous };
  }
  const m = /^(Basic|Bearer)\s+(\S+)\s*$/i.exec(header);
  if (!m) return { ok: false, reason: 'Authorization must be Basic uuid:key or Bearer token' };
  if (m[1]!.toLowerCase() === 'bearer') {
    if (token && !same(m[2]!, token)) return { ok: false, reason: 'wrong bearer token' };
    return { ok: true, subject: anonymous };
  }
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(m[2]!)) return { ok: false, reason: 'Basic credentials must be base64 of uuid:key' };
  if (token && !same(decoded.slice(colon + 1), token)) return { ok: false, reason: 'wrong key (the key is the daemon token)' };
  return { ok: true, subject: decoded.slice(0, colon) };
}
