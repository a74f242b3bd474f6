#!/usr/bin/env bash
# Prepare a Debian 12 node to build, test and run bpfd-gitops from this checkout:
#   1. Debian packages: the eBPF toolchain and the tools the demo and the tests use
#      (Node.js and npm come from Debian when missing; a node older than 20 is joined by
#      Node.js 20 from the npm registry in /usr/local;
#      docker-registry and openssl serve the bytecode image tests, which start a registry of
#      their own on 127.0.0.1);
#   2. npm dependencies (`npm ci`), skipped when node_modules already matches package.json;
#   3. `npm run build`: eBPF objects into dist/bpf, TypeScript into dist/;
#   4. bpffs on /sys/fs/bpf and tracefs on /sys/kernel/tracing, when not mounted yet.
#
# Run as root. Safe to run again: each step checks first and says what it does or skips.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly MIN_NODE_MAJOR=20
readonly PACKAGES=(
  clang llvm libbpf1 libbpf-dev bpftool iproute2 iputils-ping xdp-tools linux-libc-dev
  docker-registry openssl curl
)

say() { printf 'setup: %s\n' "$*"; }
fail() {
  printf 'setup: error: %s\n' "$*" >&2
  exit 1
}

require_root() {
  if [[ "${EUID}" -ne 0 ]]; then
    fail "run as root (sudo $0): it installs packages and mounts bpffs and tracefs"
  fi
}

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

node_major() {
  command -v node >/dev/null 2>&1 || return 0
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true
}

node_is_usable() {
  local major
  major="$(node_major)"
  [[ -n "${major}" && "${major}" -ge "${MIN_NODE_MAJOR}" ]] && command -v npm >/dev/null 2>&1
}

apt_updated=false
apt_install() {
  if [[ "${apt_updated}" == false ]]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_updated=true
  fi
  say "apt-get install $*"
  hold_services
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
  release_services
}

# docker-registry starts a registry on port 5000 when installed; nothing here wants it. Debian's
# policy-rc.d hook (exit 101: "do not start") prevents that. Machines built for containers
# already have one; elsewhere one is put in place for the install only.
readonly POLICY_RC_D=/usr/sbin/policy-rc.d
policy_placed=false
hold_services() {
  [[ -e "${POLICY_RC_D}" ]] && return 0
  printf '#!/bin/sh\n# placed by bpfd-gitops scripts/setup.sh during apt-get install\nexit 101\n' \
    >"${POLICY_RC_D}"
  chmod 0755 "${POLICY_RC_D}"
  policy_placed=true
  trap release_services EXIT
}
release_services() {
  [[ "${policy_placed}" == true ]] || return 0
  rm -f "${POLICY_RC_D}"
  policy_placed=false
}

install_packages() {
  local missing=() package
  for package in "${PACKAGES[@]}"; do
    is_installed "${package}" || missing+=("${package}")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    say "Debian packages present: ${PACKAGES[*]}"
    return
  fi
  apt_install "${missing[@]}"
}

# Debian 12's own nodejs is 18, older than package.json's "engines" allows. Debian's node and
# npm are installed when there is no node at all; when the node found is too old, npm installs
# Node.js 20 from the npm registry (the `node` package ships the official binary) into
# /usr/local, which comes before /usr/bin in PATH.
install_node() {
  if node_is_usable; then
    say "node $(node --version) and npm $(npm --version) present"
    return
  fi
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  if ! node_is_usable; then
    say "node $(node --version 2>/dev/null || echo missing) is too old: npm install -g node@${MIN_NODE_MAJOR}"
    npm install -g --prefix /usr/local "node@${MIN_NODE_MAJOR}"
    hash -r
  fi
  if ! node_is_usable; then
    fail "node ${MIN_NODE_MAJOR} or newer with npm is needed, found $(node --version 2>/dev/null || echo none)"
  fi
  say "node $(node --version) and npm $(npm --version) ready"
}

# `npm ls` fails when a dependency is missing or does not satisfy package.json, so a tree
# that passes it needs no reinstall; a fresh clone has no node_modules and always gets `npm ci`.
install_npm_dependencies() {
  cd "${repo_root}"
  if [[ -d node_modules ]] && npm ls --all >/dev/null 2>&1; then
    say "npm dependencies already installed (npm ls is clean); skipping npm ci"
    return
  fi
  say "npm ci"
  npm ci --no-audit --no-fund
}

build() {
  cd "${repo_root}"
  say "npm run build (eBPF objects into dist/bpf, TypeScript into dist/)"
  npm run --silent build
}

mount_if_missing() {
  local fstype="$1" target="$2"
  if mountpoint -q "${target}"; then
    say "${fstype} already mounted on ${target}"
    return
  fi
  say "mount -t ${fstype} ${fstype} ${target}"
  mkdir -p "${target}"
  mount -t "${fstype}" "${fstype}" "${target}"
}

main() {
  require_root
  install_packages
  install_node
  install_npm_dependencies
  build
  mount_if_missing bpf /sys/fs/bpf
  mount_if_missing tracefs /sys/kernel/tracing
  say "done"
}

main "$@"
