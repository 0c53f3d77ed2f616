#!/bin/sh
# Builds the 'minimal' guest kernel: tinyconfig + kernel.config fragment, vmlinux only (no modules).
# usage: build-kernel.sh <linux-source tarball> <fragment> <empty work dir> <output vmlinux> [jobs]
# Invoked by src/image/builder.ts, which caches the result by the hash of its inputs.
set -eu
SRC=$1; FRAG=$2; WORK=$3; OUT=$4; JOBS=${5:-2}
echo "extracting $SRC"
tar -xf "$SRC" -C "$WORK" --strip-components=1
cd "$WORK"
echo "make tinyconfig"
make -s tinyconfig >/dev/null
ARGS=""
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  sym=${line%%=*}; val=${line#*=}
  case "$val" in
    y) ARGS="$ARGS --enable $sym" ;;
    n) ARGS="$ARGS --disable $sym" ;;
    *) ARGS="$ARGS --set-val $sym $val" ;;
  esac
done < "$FRAG"
# shellcheck disable=SC2086
./scripts/config $ARGS
make -s olddefconfig
# Report fragment symbols that did not end up as requested (missing in this version, or a dependency unmet).
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  sym=${line%%=*}; val=${line#*=}
  if [ "$val" = y ] && ! grep -q "^CONFIG_$sym=y" .config; then echo "note: CONFIG_$sym is not set after olddefconfig"; fi
  if [ "$val" = n ] && grep -q "^CONFIG_$sym=y" .config; then echo "note: CONFIG_$sym is still set after olddefconfig"; fi
done < "$FRAG"
echo "make -j$JOBS vmlinux"
make -s -j"$JOBS" vmlinux
cp vmlinux "$OUT.tmp"
cp .config "$OUT.config"
mv "$OUT.tmp" "$OUT"
echo "built $OUT ($(stat -c %s "$OUT") bytes)"
