#!/usr/bin/env bash
# Prepares the node (scripts/setup.sh: packages, npm ci, build, bpffs and tracefs mounts) and
# runs the whole test suite, `npm test` (mocha on every dist/test/**/*.test.js, unit and
# real-kernel integration tests alike). Run as root: the integration tests load eBPF programs
# and create network namespaces of their own.
#
# Exits with mocha's exit code. After mocha's own summary it prints one plain line,
# "tests: N passed, N failed", for tools that do not read mocha's.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root

bash "${repo_root}/scripts/setup.sh"

cd "${repo_root}"
test_log="$(mktemp "${TMPDIR:-/tmp}/bpfd-test.XXXXXX")"
trap 'rm -f "${test_log}"' EXIT

echo "test: npm test"
status=0
npm test 2>&1 | tee "${test_log}" || status=${PIPESTATUS[0]}

# Mocha's spec reporter closes with "N passing (time)", then "N pending" and "N failing" when
# there are any.
passed="$(sed -n 's/^ *\([0-9][0-9]*\) passing.*/\1/p' "${test_log}" | tail -n 1)"
failed="$(sed -n 's/^ *\([0-9][0-9]*\) failing.*/\1/p' "${test_log}" | tail -n 1)"
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
if [[ "${status}" -eq 0 && -z "${passed}" ]]; then
  echo "test: mocha exited 0 but reported no passing test" >&2
  status=1
fi
exit "${status}"
