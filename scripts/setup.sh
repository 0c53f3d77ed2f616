#!/usr/bin/env bash
# Idempotent set-up: Debian packages (when root), npm packages, build, guest image.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))"; exit 1
fi

# Debian packages: the VMM, the guest image's tools, and the kernel source + toolchain
# for the minimal guest kernel (optional: without them Debian's generic kernel is used).
required=(qemu-system-x86 busybox-static squashfs-tools cpio xz-utils util-linux curl)
# issue 13: the cluster's broker (NATS with JetStream; Debian 12 ships 2.9, which has work queues, KV and object store)
required+=(nats-server)
# networking for functions (network: egress, docs/network.md): namespaces, veths, taps, nftables, conntrack flush
required+=(iproute2 nftables conntrack)
# issue 9: erofs-utils for the DAX root fs (without it the image falls back to squashfs)
required+=(erofs-utils)
kernel_build=(linux-source-6.1 build-essential bc flex bison libelf-dev libssl-dev dwarves)
# observability tests: a real Prometheus server scrapes the daemon, a headless Chromium loads /ui;
# plots rendered to PNG need a font
# (without them those end-to-end tests fail and name the package)
observability=(prometheus chromium fonts-dejavu-core)
# hardening (issue 12): libfaketime steps the daemon's wall clock in the clock-step e2e test
hardening=(faketime)
missing=()
for p in "${required[@]}" "${kernel_build[@]}" "${observability[@]}" "${hardening[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    # the tests start their own Prometheus on 127.0.0.1: the package's service (listening on
    # every interface) is not wanted
    if printf '%s\n' "${missing[@]}" | grep -qx prometheus && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  else
    say "missing Debian packages. Run as root:"
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    for p in "${required[@]}"; do
      if printf '%s\n' "${missing[@]}" | grep -qx "$p"; then exit 1; fi
    done
    say "(only optional packages are missing: the kernel build tools mean Debian's generic kernel is used; prometheus/chromium are needed by their e2e tests)"
  fi
fi

# Unprivileged identity of the VMM processes (docs/security.md): a system user and
# group, and a block of 65536 subordinate uids in /etc/subuid from which each VMM
# gets a uid of its own. Without root the daemon runs VMMs unjailed (it says so).
if [ "$(id -u)" -eq 0 ]; then
  if ! getent passwd faascell-vmm >/dev/null; then
    say "creating the system user faascell-vmm (VMMs run as it, jailed)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin faascell-vmm
  fi
  if ! grep -q '^faascell-vmm:' /etc/subuid 2>/dev/null; then
    # above every uid in use and every block already handed out, on a 65536 boundary
    top=$( { getent passwd | awk -F: '$3 < 4294967294 {print $3 + 1}'; [ -f /etc/subuid ] && awk -F: '{print $2 + $3}' /etc/subuid; echo 100000; } | sort -n | tail -1)
    start=$(( (top + 65535) / 65536 * 65536 ))
    say "reserving uids $start-$((start + 65535)) for VMM processes (/etc/subuid)"
    usermod --add-subuids "$start-$((start + 65535))" faascell-vmm
  fi
fi

# npm packages: reinstall only when package-lock.json changed
stamp=node_modules/.faascell-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
# the native add-on compiled here, kept where the next clean install looks first (saves minutes a clone)
node scripts/keep-native-builds.cjs

say "building the command (dist/) and the guest agent"
node scripts/build.mjs >/dev/null

# issue 21: the Python image (Debian 12's python3 and the scientific stack, docs/python.md). Its root fs
# needs no kernel: it is built in the background beside the Node image (the first time while the kernel
# compiles; ~400 MB of Debian packages, fewer when the host's apt cache has them, and a minute or more of
# CPU: docs/python.md "Build cost"), then the image around it once the kernel is there (a second); only the
# Node image's build ever compiles the kernel. Later runs find everything cached. Its lines are prefixed
# [python3]. FAASCELL_PYTHON_IMAGE=0 skips it (Python functions are then refused by the daemon).
python_pid=
if [ "${FAASCELL_PYTHON_IMAGE:-1}" != 0 ]; then
  say "Python guest image's root fs (built once from Debian packages, cached by its inputs), in the background"
  ( set -o pipefail; node bin/faascell.js image build --runtime python3 --root-fs-only 2>&1 | sed -u 's/^/[python3] /' >&2 ) &
  python_pid=$!
fi

say "guest image (built once, cached by its inputs)"
node_rc=0
node bin/faascell.js image build || node_rc=$?

# the background build is always waited for: a failed Node image build leaves no build running behind
if [ -n "$python_pid" ]; then
  if wait "$python_pid" && [ "$node_rc" = 0 ]; then
    say "Python guest image"
    node bin/faascell.js image build --runtime python3 || say "the Python image could not be built: python3 functions will be refused (see above)"
  else
    say "the Python image could not be built: python3 functions will be refused (see the lines above)"
  fi
fi
exit "$node_rc"
