#!/usr/bin/env bash
# Compile every eBPF C source under bpf/ (and bpf/test/) into dist/bpf/.
#
#   bpf/<name>.c       -> dist/bpf/<name>.o
#   bpf/test/<name>.c  -> dist/bpf/test/<name>.o
#
# Objects keep BTF (-g): the daemon resolves `globaldata` keys through the
# BTF of the .rodata/.data sections. Safe to run again; every object is
# rebuilt from its source each time.
#
# Environment: CLANG (default clang), BPF_CFLAGS (extra flags, appended).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source_dir="${repo_root}/bpf"
output_dir="${repo_root}/dist/bpf"
clang_bin="${CLANG:-clang}"

if ! command -v "${clang_bin}" >/dev/null 2>&1; then
  echo "build-bpf: '${clang_bin}' not found; install clang (14 or newer) or set CLANG" >&2
  exit 1
fi

# <asm/types.h> and friends live in the multiarch include dir on Debian.
multiarch_include="/usr/include/$(uname -m)-linux-gnu"

cflags=(-O2 -g -target bpf -Wall -I "${source_dir}")
if [[ -d "${multiarch_include}" ]]; then
  cflags+=(-I "${multiarch_include}")
fi
# shellcheck disable=SC2206 # word splitting of user-supplied flags is intended
cflags+=(${BPF_CFLAGS:-})

compile_dir() {
  local from_dir="$1" to_dir="$2" source object
  mkdir -p "${to_dir}"
  shopt -s nullglob
  for source in "${from_dir}"/*.c; do
    object="${to_dir}/$(basename "${source%.c}").o"
    if ! "${clang_bin}" "${cflags[@]}" -c "${source}" -o "${object}.partial"; then
      rm -f "${object}.partial"
      echo "build-bpf: failed to compile ${source#"${repo_root}/"}" >&2
      exit 1
    fi
    mv -f "${object}.partial" "${object}"
    echo "built ${object#"${repo_root}/"}"
  done
  shopt -u nullglob
}

compile_dir "${source_dir}" "${output_dir}"
compile_dir "${source_dir}/test" "${output_dir}/test"
