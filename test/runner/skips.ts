// The one list of reasons a test may skip in `npm test`. After scripts/setup.sh everything the suites
// need is installed, so a skip means a test did not run: the runner counts it as a failure unless its
// reason names one of these documented impossibilities of the machine (docs/testing.md). A test that
// may skip for one of them builds its reason with impossibleHere(), so the runner recognises it.

export const IMPOSSIBILITIES = {
  'no-usable-kvm': 'the host has no /dev/kvm this user can open, or its KVM cannot run a guest (no hardware virtualisation)',
  'no-firecracker': 'no Firecracker binary (it is not packaged by Debian; the project installs only Debian packages)',
} as const;

export type Impossibility = keyof typeof IMPOSSIBILITIES;

const FORMAT = /^impossible here \(([a-z0-9-]+)\): /;

/** The skip reason for a documented impossibility, with what was found on this machine. */
export function impossibleHere(what: Impossibility, detail: string): string {
  return `impossible here (${what}): ${detail}`;
}

/** Which allowed impossibility a skip reason names, or undefined when the skip is not allowed. */
export function allowedSkip(reason: string | boolean | undefined): Impossibility | undefined {
  if (typeof reason !== 'string') return undefined;
  const key = FORMAT.exec(reason)?.[1];
  return key !== undefined && Object.hasOwn(IMPOSSIBILITIES, key) ? (key as Impossibility) : undefined;
}
