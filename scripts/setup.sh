#!/usr/bin/env bash
# Installs what Rewind needs when it is missing. Sourced by both of the README's commands, so the
# run command and the test command check the same things the same way:
#   scripts/setup.sh build   the Rust toolchain and the system libraries the build links (RocksDB)
#   scripts/setup.sh test    the above, plus the real agents and browser the tests drive
# Each prerequisite is checked by what the build actually uses (a header, a shared library, a
# command), not by a package database, so a machine that has them some other way is left alone.
# Whatever cannot be installed (no root, no apt) stops the script with one line naming the
# Debian package to install.

rewind_setup() {
  local profile="${1:-build}"
  # prerequisite name | check | Debian package
  local -a reqs=(
    "libclang|rewind_has_libclang|libclang-dev"
    "clang|command -v clang|clang"
    "RocksDB headers|test -f /usr/include/rocksdb/c.h|librocksdb-dev"
    "RocksDB library|rewind_has_lib librocksdb.so|librocksdb-dev"
    "zstd headers|test -f /usr/include/zstd.h|libzstd-dev"
    "lz4 headers|test -f /usr/include/lz4.h|liblz4-dev"
  )
  if [ "$profile" = test ]; then
    reqs+=(
      "Python venv|python3 -c 'import venv, ensurepip'|python3-venv"
      "Node.js|command -v node|nodejs"
      "npm|command -v npm|npm"
      "Chromium|test -x /usr/bin/chromium|chromium"
    )
  fi

  if ! command -v cargo >/dev/null; then
    echo "rewind: missing the Rust toolchain (cargo): install it from https://rustup.rs, then run this again" >&2
    return 1
  fi

  local -a missing=() entry name check pkg
  for entry in "${reqs[@]}"; do
    IFS='|' read -r name check pkg <<< "$entry"
    eval "$check" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  # One package may cover several checks (librocksdb-dev).
  read -r -a missing <<< "$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"

  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  fi
  if [ "$sudo" = none ] || ! command -v apt-get >/dev/null; then
    echo "rewind: missing system packages, and no root or apt-get to install them: install the Debian packages ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; then
    echo "rewind: apt-get could not install ${missing[*]}: install them by hand (sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  for entry in "${reqs[@]}"; do
    IFS='|' read -r name check pkg <<< "$entry"
    if ! eval "$check" >/dev/null 2>&1; then
      echo "rewind: $name still missing after installing $pkg" >&2
      return 1
    fi
  done
}

# A shared library in the multiarch directory the build links from (.cargo/config.toml).
rewind_has_lib() {
  compgen -G "/usr/lib/$(uname -m)-linux-gnu/$1*" >/dev/null
}

# bindgen (in librocksdb-sys's build script) loads libclang.so or a versioned libclang-14.so.1,
# and needs clang's own headers beside it (libclang-common-*-dev, which libclang-dev brings).
rewind_has_libclang() {
  compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || compgen -G "/usr/lib/llvm-*/lib/libclang-[0-9]*.so*" >/dev/null || return 1
  compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  rewind_setup "${1:-build}"
fi
