#!/usr/bin/env bash
# Runs bpfd-gitops on the three example manifests with live traffic, and shows the counters.
#
#   sudo ./scripts/demo.sh                  until Ctrl-C
#   sudo ./scripts/demo.sh --no-follow      prints the counters a few times, cleans up, and
#                                           exits 0 only if every counter moved
#   sudo ./scripts/demo.sh --cleanup        removes what an interrupted demo left behind
#
# What it sets up, all of it removed again on exit (Ctrl-C included):
#   - network namespaces bpfd-demo and bpfd-demo-peer joined by a veth pair: bpfd-demo0
#     (169.254.77.1) on the daemon's side, bpfd-demo1 (169.254.77.2) on the peer's side;
#   - a temp dir with a manifest dir (copies of examples/manifests/*.yaml), a config file and
#     the daemon's log;
#   - the daemon, `bin/bpfd run`, inside bpfd-demo, owning the bpffs root /sys/fs/bpf/bpfd-demo;
#   - a ping from bpfd-demo-peer to bpfd-demo0, so the XDP and TC counters have packets to count.
# The example objects are installed to /usr/local/lib/bpfd-gitops/bpf (where the example
# manifests point) and stay there.
#
# The daemon is started with `nsenter --net=`, not `ip netns exec`: the latter remounts /sys in
# a private mount namespace, and the daemon would not see the host's /sys/fs/bpf.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly BPFD="${repo_root}/bin/bpfd"
readonly DEMO_NETNS=bpfd-demo
readonly PEER_NETNS=bpfd-demo-peer
readonly DEMO_IFACE=bpfd-demo0
readonly PEER_IFACE=bpfd-demo1
readonly DEMO_ADDRESS=169.254.77.1
readonly PEER_ADDRESS=169.254.77.2
readonly BPFFS_ROOT=/sys/fs/bpf/bpfd-demo
readonly OBJECT_DIR=/usr/local/lib/bpfd-gitops/bpf
readonly EXAMPLE_OBJECTS=(xdp_counter.o tc_counter.o tracepoint_counter.o)
readonly LOAD_TIMEOUT_SECONDS=60
readonly STOP_TIMEOUT_SECONDS=10

follow=true
rounds=5
interval_seconds=2
run_setup=true

work_dir=''
daemon_pid=''
ping_pid=''

usage() {
  cat <<EOF
Usage: sudo $0 [--no-follow] [--rounds N] [--interval SECONDS] [--skip-setup]
       sudo $0 --cleanup

  (no option)        run until Ctrl-C, printing the counters every --interval seconds
  --no-follow        print the counters --rounds times (default ${rounds}), clean up, exit 0
                     only if the XDP, TC and tracepoint counters all moved
  --rounds N         rounds to print with --no-follow
  --interval SECONDS pause between rounds (default ${interval_seconds})
  --skip-setup       do not run scripts/setup.sh first (it is safe to run, just slower)
  --cleanup          remove namespaces and pins an interrupted demo left behind, then exit
EOF
}

say() { printf '\ndemo: %s\n' "$*"; }
fail() {
  printf 'demo: error: %s\n' "$*" >&2
  exit 1
}

in_demo_netns() { nsenter --net="/run/netns/${DEMO_NETNS}" "$@"; }
in_peer_netns() { nsenter --net="/run/netns/${PEER_NETNS}" "$@"; }
bpfd_in_demo() { in_demo_netns "${BPFD}" "$1" --config "${work_dir}/config.yaml" "${@:2}"; }

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --no-follow) follow=false ;;
      --rounds)
        rounds="${2:?--rounds needs a number}"
        shift
        ;;
      --interval)
        interval_seconds="${2:?--interval needs a number of seconds}"
        shift
        ;;
      --skip-setup) run_setup=false ;;
      --cleanup)
        require_root
        remove_leftovers
        exit 0
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      *)
        usage >&2
        exit 64
        ;;
    esac
    shift
  done
  [[ "${rounds}" =~ ^[1-9][0-9]*$ ]] || fail "--rounds must be a positive number"
  [[ "${interval_seconds}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "--interval must be a number"
}

require_root() {
  [[ "${EUID}" -eq 0 ]] || fail "run as root (sudo $0): it loads eBPF programs"
}

has_leftovers() {
  [[ -e "/run/netns/${DEMO_NETNS}" || -e "/run/netns/${PEER_NETNS}" || -e "${BPFFS_ROOT}" ]]
}

# A daemon holds an exclusive flock on its bpffs root while it runs.
root_is_locked() {
  [[ -d "${BPFFS_ROOT}" ]] && ! flock --nonblock "${BPFFS_ROOT}" true
}

remove_leftovers() {
  if root_is_locked; then
    fail "a bpfd daemon still runs on ${BPFFS_ROOT}; stop that demo (Ctrl-C) first"
  fi
  say "removing ${BPFFS_ROOT} and namespaces ${DEMO_NETNS}, ${PEER_NETNS} (where present)"
  rm -rf "${BPFFS_ROOT}"
  ip netns del "${DEMO_NETNS}" 2>/dev/null || true
  ip netns del "${PEER_NETNS}" 2>/dev/null || true
}

# Runs on every exit: stops what the demo started, by PID, and removes what it created.
cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM HUP
  say "cleaning up"

  if [[ -n "${ping_pid}" ]]; then
    kill -TERM "${ping_pid}" 2>/dev/null
    wait "${ping_pid}" 2>/dev/null
  fi
  if [[ -n "${daemon_pid}" ]]; then
    stop_daemon
  fi

  # Links go with their pins once no process holds them: this detaches XDP, TC and tracepoint.
  rm -rf "${BPFFS_ROOT}"
  ip netns del "${PEER_NETNS}" 2>/dev/null
  ip netns del "${DEMO_NETNS}" 2>/dev/null
  [[ -n "${work_dir}" ]] && rm -rf "${work_dir}"
  echo "demo: removed ${BPFFS_ROOT}, namespaces ${DEMO_NETNS} and ${PEER_NETNS}${work_dir:+, ${work_dir}}"
  exit "${status}"
}

stop_daemon() {
  local waited=0
  kill -TERM "${daemon_pid}" 2>/dev/null
  while kill -0 "${daemon_pid}" 2>/dev/null && [[ ${waited} -lt $((STOP_TIMEOUT_SECONDS * 10)) ]]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "${daemon_pid}" 2>/dev/null; then
    echo "demo: daemon ${daemon_pid} did not stop on SIGTERM; sending SIGKILL"
    kill -KILL "${daemon_pid}" 2>/dev/null
  fi
  wait "${daemon_pid}" 2>/dev/null
  echo "demo: daemon ${daemon_pid} stopped"
}

install_objects() {
  say "installing ${EXAMPLE_OBJECTS[*]} to ${OBJECT_DIR} (the example manifests load them from there)"
  local object
  for object in "${EXAMPLE_OBJECTS[@]}"; do
    install -D -m 0644 "${repo_root}/dist/bpf/${object}" "${OBJECT_DIR}/${object}"
  done
}

create_namespaces() {
  say "creating namespaces ${DEMO_NETNS} (${DEMO_IFACE} ${DEMO_ADDRESS}) and ${PEER_NETNS} (${PEER_IFACE} ${PEER_ADDRESS})"
  ip netns add "${DEMO_NETNS}"
  ip netns add "${PEER_NETNS}"
  in_demo_netns ip link add "${DEMO_IFACE}" type veth peer name "${PEER_IFACE}" netns "${PEER_NETNS}"
  in_demo_netns ip addr add "${DEMO_ADDRESS}/24" dev "${DEMO_IFACE}"
  in_peer_netns ip addr add "${PEER_ADDRESS}/24" dev "${PEER_IFACE}"
  # lo carries the daemon's metrics endpoint (127.0.0.1:9474 inside the demo namespace).
  in_demo_netns ip link set lo up
  in_demo_netns ip link set "${DEMO_IFACE}" up
  in_peer_netns ip link set "${PEER_IFACE}" up
}

write_workspace() {
  work_dir="$(mktemp -d /tmp/bpfd-demo.XXXXXX)"
  mkdir -m 0755 "${work_dir}/programs.d" "${work_dir}/state"
  chmod 0755 "${work_dir}"
  # Mode 0644 whatever the caller's umask: strictModes refuses group- or world-writable files.
  install -m 0644 -t "${work_dir}/programs.d" "${repo_root}"/examples/manifests/*.yaml
  cat >"${work_dir}/config.yaml" <<EOF
# Node config of the demo daemon (scripts/demo.sh); see examples/config.yaml for every key.
nodeName: demo-node
nodeLabels:
  demo: "true"
manifestDir: ${work_dir}/programs.d
bpffsRoot: ${BPFFS_ROOT}
stateDir: ${work_dir}/state
# Loopback of the demo namespace, not of the host.
metrics:
  listen: 127.0.0.1:9474
bytecodeRoots:
  - ${OBJECT_DIR}
logLevel: info
EOF
  say "manifests in ${work_dir}/programs.d, config ${work_dir}/config.yaml"
}

start_daemon() {
  say "starting: nsenter --net=/run/netns/${DEMO_NETNS} bin/bpfd run --config ${work_dir}/config.yaml"
  # A plain command, not a shell function: `&` then forks one process that execs nsenter, and
  # nsenter execs node, so $! is the daemon's own PID.
  nsenter --net="/run/netns/${DEMO_NETNS}" "${BPFD}" run --config "${work_dir}/config.yaml" \
    --log-format human >"${work_dir}/daemon.log" 2>&1 &
  daemon_pid=$!
  echo "demo: daemon pid ${daemon_pid}, log ${work_dir}/daemon.log"
}

show_daemon_log() {
  echo "--- last lines of ${work_dir}/daemon.log ---"
  tail -n 30 "${work_dir}/daemon.log" || true
  echo "---"
}

# Number of objects whose BpfProgram condition is Loaded, per `bpfd status -o json`.
loaded_count() {
  bpfd_in_demo status -o json 2>/dev/null | node -e '
    let text = "";
    process.stdin.on("data", (chunk) => (text += chunk));
    process.stdin.on("end", () => {
      const objects = text ? JSON.parse(text).objects : [];
      console.log(objects.filter((object) => object.condition === "Loaded").length);
    });'
}

wait_until_loaded() {
  local expected=${#EXAMPLE_OBJECTS[@]} deadline=$((SECONDS + LOAD_TIMEOUT_SECONDS)) count=0
  say "waiting until the ${expected} example objects are Loaded"
  while [[ ${SECONDS} -lt ${deadline} ]]; do
    if ! kill -0 "${daemon_pid}" 2>/dev/null; then
      show_daemon_log
      fail "the daemon exited"
    fi
    count="$(loaded_count)"
    [[ "${count}" -eq "${expected}" ]] && return 0
    sleep 0.5
  done
  show_daemon_log
  bpfd_in_demo status || true
  fail "only ${count} of ${expected} objects Loaded after ${LOAD_TIMEOUT_SECONDS}s"
}

# The pin path of map $3 of object $1 $2, from the BpfProgram document of its status sidecar
# (spec.programs.<program id>.<map name>), as `bpfd get` prints it.
map_pin() {
  bpfd_in_demo get "$1" "$2" -o json | node -e '
    let text = "";
    process.stdin.on("data", (chunk) => (text += chunk));
    process.stdin.on("end", () => {
      const bpfProgram = JSON.parse(text).find((document) => document.kind === "BpfProgram");
      const maps = Object.values(bpfProgram.spec.programs)[0];
      console.log(maps[process.argv[1]]);
    });' "$3"
}

# The value at key 0 of a pinned map: "packets bytes" for the packet counters, a number for
# the tracepoint counter. bpftool prints the fields by name thanks to the objects' BTF.
map_value() {
  bpftool -j map dump pinned "$1" 2>/dev/null | node -e '
    let text = "";
    process.stdin.on("data", (chunk) => (text += chunk));
    process.stdin.on("end", () => {
      try {
        const value = JSON.parse(text)[0].formatted.value;
        console.log(typeof value === "object" ? `${value.packets} ${value.bytes}` : String(value));
      } catch {
        console.log("? ?");
      }
    });'
}

start_traffic() {
  say "starting traffic: ping ${DEMO_ADDRESS} from ${PEER_NETNS}, 5 packets a second"
  nsenter --net="/run/netns/${PEER_NETNS}" ping -n -i 0.2 "${DEMO_ADDRESS}" \
    >"${work_dir}/ping.log" 2>&1 &
  ping_pid=$!
}

ping_replies() {
  grep -c 'bytes from' "${work_dir}/ping.log" || true
}

xdp_pin='' tc_pin='' tracepoint_pin=''
find_pins() {
  xdp_pin="$(map_pin XdpProgram xdp-counter-example xdp_stats_map)"
  tc_pin="$(map_pin TcProgram tc-counter-example tc_stats_map)"
  tracepoint_pin="$(map_pin TracepointProgram tracepoint-counter-example tracepoint_stats_map)"
}

show_pins() {
  say "map pins (from spec.programs of the BpfProgram documents in the status sidecars):"
  printf '  %s\n' "${xdp_pin}" "${tc_pin}" "${tracepoint_pin}"
  echo "demo: read one yourself: bpftool map dump pinned ${xdp_pin}"
}

# A changed spec (an edited globaldata, say) loads a new program with new maps in a new pin
# dir, so its counters start again from 0; look the paths up again when one has gone.
refresh_pins() {
  [[ -e "${xdp_pin}" && -e "${tc_pin}" && -e "${tracepoint_pin}" ]] && return 0
  find_pins 2>/dev/null || true
  echo "demo: a program was replaced; counting from its new maps now"
}

# Prints one line of counters and leaves them in the globals below for the caller to compare.
xdp_packets=0 tc_packets=0 openat_calls=0
print_counters() {
  local xdp tc
  refresh_pins
  read -r xdp_packets xdp <<<"$(map_value "${xdp_pin}")"
  read -r tc_packets tc <<<"$(map_value "${tc_pin}")"
  openat_calls="$(map_value "${tracepoint_pin}")"
  printf '%s  xdp %s: %s pkts %s B | tc ingress %s: %s pkts %s B | openat calls: %s | ping replies: %s\n' \
    "$(date +%T)" "${DEMO_IFACE}" "${xdp_packets}" "${xdp}" "${DEMO_IFACE}" "${tc_packets}" "${tc}" \
    "${openat_calls}" "$(ping_replies)"
  # A map that could not be read counts as 0 for the comparison of --no-follow.
  [[ "${xdp_packets}" =~ ^[0-9]+$ ]] || xdp_packets=0
  [[ "${tc_packets}" =~ ^[0-9]+$ ]] || tc_packets=0
  [[ "${openat_calls}" =~ ^[0-9]+$ ]] || openat_calls=0
}

show_status() {
  say "bpfd status (run inside ${DEMO_NETNS}, so interface names resolve there):"
  bpfd_in_demo status
}

print_hints() {
  cat <<EOF

demo: try, in another terminal (as root):
  nsenter --net=/run/netns/${DEMO_NETNS} ${BPFD} status --config ${work_dir}/config.yaml
  cat ${work_dir}/programs.d/xdp-counter.status.yaml
  # XDP_DROP: the XDP counter keeps counting, TC sees nothing more, ping replies stop
  sed -i 's/verdict: AgAAAA==/verdict: AQAAAA==/' ${work_dir}/programs.d/xdp-counter.yaml
  nsenter --net=/run/netns/${DEMO_NETNS} curl -s 127.0.0.1:9474/metrics | grep ^bpfd_
demo: Ctrl-C stops the daemon and removes everything the demo created.

EOF
}

follow_counters() {
  print_hints
  while true; do
    print_counters
    sleep "${interval_seconds}"
  done
}

# Exit status 0 only if the XDP, TC and tracepoint counters all grew between the first and the
# last round.
check_counters() {
  local round first_xdp first_tc first_openat
  print_counters
  first_xdp=${xdp_packets} first_tc=${tc_packets} first_openat=${openat_calls}
  for ((round = 2; round <= rounds; round++)); do
    sleep "${interval_seconds}"
    print_counters
  done

  if ((xdp_packets > first_xdp && tc_packets > first_tc && openat_calls > first_openat)); then
    say "counters moved: xdp +$((xdp_packets - first_xdp)), tc +$((tc_packets - first_tc)), openat +$((openat_calls - first_openat))"
    return 0
  fi
  say "counters did not all move (xdp ${first_xdp} -> ${xdp_packets}, tc ${first_tc} -> ${tc_packets}, openat ${first_openat} -> ${openat_calls})"
  show_daemon_log
  return 1
}

main() {
  parse_args "$@"
  require_root
  if root_is_locked; then
    fail "another demo is running (its daemon holds ${BPFFS_ROOT}); stop it with Ctrl-C first"
  fi
  if has_leftovers; then
    fail "namespaces or pins of an earlier demo are still there; run: sudo $0 --cleanup"
  fi
  if [[ "${run_setup}" == true ]]; then
    bash "${repo_root}/scripts/setup.sh"
  fi

  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP

  install_objects
  "${BPFD}" validate "${repo_root}/examples/manifests"
  create_namespaces
  write_workspace
  start_daemon
  wait_until_loaded
  start_traffic
  show_status
  find_pins
  show_pins
  say "counters (key 0 of each map):"
  if [[ "${follow}" == true ]]; then
    follow_counters
  fi
  check_counters
}

main "$@"
