// Example user keep-alive policy for FaaSCell (plain JS, loads with or without tsx).
//
//   policies:
//     keepAlive: { policy: module, module: ./keepalive-double-ttl.mjs, options: { baseTtlSeconds: 60, maxTtlSeconds: 3600 } }
//
// Rule: a function's TTL starts at baseTtlSeconds and doubles every time an
// invocation arrives while one of its instances is still warm (the TTL paid
// off), up to maxTtlSeconds; it halves back when an instance expires unused.
// Policies get time as an argument (`now`, ms) and must not read the clock.

/**
 * @param {{ baseTtlSeconds?: number, maxTtlSeconds?: number }} options  from the config
 * @param {{ rng: { next(): number }, baseDir: string, key: string }} _ctx  seeded Rng etc.
 */
export default function createDoubleTtl(options = {}, _ctx) {
  const baseMs = (options.baseTtlSeconds ?? 60) * 1000;
  const maxMs = (options.maxTtlSeconds ?? 3600) * 1000;
  if (!(baseMs > 0) || !(maxMs >= baseMs)) throw new Error('need 0 < baseTtlSeconds <= maxTtlSeconds');
  /** @type {Map<string, number>} current TTL per function */
  const ttl = new Map();
  /** @type {Map<string, number>} when the function's last instance would expire */
  const expiresAt = new Map();

  return {
    name: 'double-ttl',
    onInvocation(fn, now) {
      const until = expiresAt.get(fn.name);
      const cur = ttl.get(fn.name) ?? baseMs;
      if (until !== undefined && now <= until) ttl.set(fn.name, Math.min(maxMs, cur * 2));
      else if (until !== undefined) ttl.set(fn.name, Math.max(baseMs, cur / 2));
    },
    onIdle(inst, _fn, now) {
      const keepWarmMs = ttl.get(inst.fn) ?? baseMs;
      expiresAt.set(inst.fn, now + keepWarmMs);
      return { keepWarmMs };
    },
    // priority(), onEvict() and onStop() are optional.
  };
}
