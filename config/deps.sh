#!/bin/sh
# deps.sh — install the Debian 12 packages that Agenda's build and tests need.
#
# Safe to rerun: it asks dpkg which packages are missing and does nothing
# (and prints nothing) when all are present.  Otherwise it runs
# `apt-get update` once and installs only the missing ones.  Needs root, or
# sudo, only when something has to be installed.
#
# Services: some packages (etcd-server, nginx) would start a daemon from
# their postinst.  The tests and run-local start their own etcd and nginx
# when they need one, so while installing we tell invoke-rc.d /
# deb-systemd-invoke not to start anything (the standard policy-rc.d
# mechanism), and afterwards we disable the etcd and nginx units we just
# installed if systemd is running.  Nothing that is already running is
# touched.
set -eu

PACKAGES="
build-essential pkg-config
liblmdb-dev lmdb-utils libjansson-dev libevent-dev libssl-dev
libcmocka-dev clang libfuzzer-14-dev libclang-rt-14-dev
python3-pytest python3-requests python3-websocket python3-yaml
wrk etcd-server valgrind faketime
iproute2 iptables curl ca-certificates jq
nginx nginx-dev libnginx-mod-nchan libjwt-dev libargon2-dev openssl tzdata
chromium chromium-driver python3-selenium
"

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) ||
        status=""
    if [ "$status" != "installed" ]; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "deps.sh: installing:$missing"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps.sh: need root to install:$missing" >&2
    echo "deps.sh: run as root: apt-get install$missing" >&2
    exit 1
fi

# Keep package postinst scripts from starting services, unless a policy is
# already in place (containers usually have one); remove ours on any exit.
POLICY=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$POLICY" ]; then
    $SUDO sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY"
    own_policy=1
fi
cleanup() {
    if [ "$own_policy" -eq 1 ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export DEBIAN_FRONTEND=noninteractive
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086  # word splitting of the package list is wanted
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends $missing

# Do not leave etcd or nginx enabled at boot when we installed them now and
# systemd is the running init; in containers without systemd there is
# nothing to do.
disable_unit() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
    then
        $SUDO systemctl disable --now "$1" >/dev/null 2>&1 || true
    fi
}
case " $missing " in
*" etcd-server "*) disable_unit etcd.service ;;
esac
case " $missing " in
*" nginx "*) disable_unit nginx.service ;;
esac

echo "deps.sh: done"
