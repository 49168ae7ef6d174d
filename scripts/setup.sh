#!/usr/bin/env bash
# setup.sh — install what HDE needs (Debian 12 packages, as root) when it is
# missing, then configure and build. Idempotent: a second run only rebuilds.
#   scripts/setup.sh [BUILD_DIR [MESON_OPTION...]]    (default: build)
# MESON_OPTIONs go to `meson setup` when BUILD_DIR is configured the first
# time (scripts/test.sh --sanitize: build-asan with ASan and UBSan). With
# SETUP_TARGETS set, only those ninja targets are built; with
# SETUP_CONFIGURE_ONLY=1, none.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift $(( $# > 0 ? 1 : 0 ))

PKGS=(
  g++ pkg-config meson ninja-build         # toolchain
  libdpdk-dev dpdk                         # data plane (DPDK 22.11)
  libzstd-dev zstd liblz4-dev libisal-dev  # codecs, CRC32C, erasure codes
  liburcu-dev                              # RCU for shared state
  libxxhash-dev                            # content hash (XXH3-128)
  nlohmann-json3-dev libcli11-dev          # JSON reports, command lines
  libtomlplusplus-dev                      # gateway configuration file (TOML)
  libssl-dev                               # SHA-256 of images
  libcmocka-dev libgtest-dev libgmock-dev  # tests
  libbenchmark-dev                         # micro-benchmarks
  clang libclang-rt-14-dev                 # libFuzzer target
  librapidcheck-dev                        # property tests (CRDTs)
  iproute2 python3 bc                      # namespaces for e2e tests, scripts
  tcpdump                                  # captures of the link (tests: no page content in clear)
  qemu-system-x86                          # real QEMU 7.2 migrations (tests/qemu)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install packages (run as root or: sudo $0)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release "$@"
fi
[ "${SETUP_CONFIGURE_ONLY:-0}" = 1 ] && exit 0
# shellcheck disable=SC2086  # a list of target names
ninja -C "$BUILD" ${SETUP_TARGETS:-}
