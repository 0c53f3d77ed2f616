# --- the Python agent (issue 21) ---
# The Python image's /init is the Node image's /init (guest/image/init) up to its line
# "# --- agent start options (issue 9) ---" (mounts, root fs, channel, network, helper:
# the same boot), followed by this file instead of Node's start (src/image/python.ts).
# The root fs is a Debian tree (python3 and its libraries where Debian puts them), so the
# agent runs inside it (chroot) with /dev, /proc, /sys and /tmp mounted into it, the agent
# (from this initramfs, read-only) on /opt/faascell, and the network files written above.
# faascell.python_flags=A,B,...: extra interpreter options (e.g. -X,importtime).
PYTHON_FLAGS=
case " $CMDLINE " in *" faascell.python_flags="*)
  t=${CMDLINE##*faascell.python_flags=}; t=${t%% *}; PYTHON_FLAGS=${t//,/ } ;;
esac
mount -o bind /dev /rootfs/dev || die "cannot mount /dev into the root fs"
mount -t proc proc /rootfs/proc || die "cannot mount /proc into the root fs"
mount -t sysfs sysfs /rootfs/sys || die "cannot mount /sys into the root fs"
mount -o bind /tmp /rootfs/tmp || die "cannot mount /tmp into the root fs"
mount -o bind /opt/faascell /rootfs/opt/faascell && mount -o remount,bind,ro /rootfs/opt/faascell || die "cannot mount the agent into the root fs"
for f in resolv.conf hosts nsswitch.conf; do
  [ -f "/etc/$f" ] && mount -o bind "/etc/$f" "/rootfs/etc/$f"
done

cd /tmp
# uptime when Python is started: /init's own share of the boot
read -r EXEC_UP _ < /proc/uptime
# -E -s: no PYTHON* variables, no user site; -B: the function's own modules (in /tmp) get no .pyc
# shellcheck disable=SC2086 # PYTHON_FLAGS is a list
env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
  FAASCELL_INIT_UPTIME="$UP" FAASCELL_EXEC_UPTIME="$EXEC_UP" FAASCELL_AGENT_CHANNEL="$CHANNEL" FAASCELL_GUEST=1 FAASCELL_WORK_DIR=/tmp FAASCELL_HELPER_FDS=$HELPER_FDS FAASCELL_AGENT_DEBUG=$DEBUG \
  /bin/chroot /rootfs /usr/bin/python3 -E -s -B $PYTHON_FLAGS /opt/faascell/agent.py < /dev/null > "$AGENT_OUT" 2>&1
echo "faascell-init: agent exited with status $?"
poweroff -f
reboot -f
