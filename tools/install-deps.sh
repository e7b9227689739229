#!/usr/bin/env bash
# Installs every Debian 12 package bitscout needs to build, test and run its demo.
# Idempotent: when everything is already installed it changes nothing and needs no network.
# Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev   # toolchains, libFuzzer runtime
  libzmq3-dev libsqlite3-dev libcjson-dev libuv1-dev          # the mandated core
  libsodium-dev zlib1g-dev                                     # hashing/CURVE, gzip data
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev            # ONNX via protobuf-c
  dataset-fashion-mnist libonnx-testdata                       # demo data; ONNX backend tests
  sqlite3 procps                                               # tests query the db; pgrep/pkill
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
