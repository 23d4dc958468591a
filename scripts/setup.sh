#!/usr/bin/env bash
# Installs what crmmigrate needs to build and test on Debian bookworm. Idempotent: when every
# package is present it only checks (no apt-get update), so it is fast on a prepared machine.
#
# Usage: scripts/setup.sh [--with-browser]   (chromium for the console tests is now always installed)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
  build-essential cmake ninja-build pkg-config ccache git
  libboost1.81-dev libboost-json1.81-dev
  liblmdb-dev lmdb-utils
  libutf8proc-dev libicu-dev libfmt-dev libcli11-dev
  libssl-dev ca-certificates
  doctest-dev libbenchmark-dev
  python3-dev python3-pytest pybind11-dev
  # libphonenumber: the -dev package pulls Boost 1.74 dev packages that conflict with 1.81, so we
  # take the runtime library and its header dependencies from apt and unpack only the headers.
  libphonenumber8 libprotobuf-dev libabsl-dev
  # The review console's browser tests (tests/web/browser: playwright-core drives this chromium).
  chromium nodejs
)
for arg in "$@"; do
  case "$arg" in
    --with-browser) pkgs+=(chromium nodejs npm) ;;
    *) echo "setup.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm: Debian ships it apart from nodejs; a NodeSource nodejs bundles it (and conflicts with Debian's).
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Headers of libphonenumber, unpacked (not installed) under third_party/ in the source tree's build
# area, unless a system libphonenumber-dev provides them.
if [ ! -f /usr/include/phonenumbers/phonenumberutil.h ]; then
  dest="$here/build/_deps/libphonenumber"
  if [ ! -f "$dest/usr/include/phonenumbers/phonenumberutil.h" ]; then
    echo "setup: unpacking libphonenumber headers into $dest"
    mkdir -p "$dest"
    tmp=$(mktemp -d)
    ( cd "$tmp" && apt-get download libphonenumber-dev >/dev/null 2>&1 ) || {
      [ "$(id -u)" -eq 0 ] && apt-get update -qq && ( cd "$tmp" && apt-get download libphonenumber-dev )
    }
    dpkg-deb -x "$tmp"/libphonenumber-dev_*.deb "$dest"
    rm -rf "$tmp"
  fi
fi
# Conformance tests (tests/conformance): Prism and the official HubSpot Node client, pinned by its
# package-lock.json; skipped when node_modules is already up to date with the lock file.
conf="$here/tests/conformance"
if [ -f "$conf/package-lock.json" ] && command -v npm >/dev/null 2>&1; then
  if [ ! -f "$conf/node_modules/.package-lock.json" ] || [ "$conf/package-lock.json" -nt "$conf/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci --prefix tests/conformance"
    npm ci --prefix "$conf" --no-audit --no-fund --loglevel=error
  fi
fi
echo "setup: all dependencies present"
