// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_verdict: counts each run and returns a verdict chosen at load time, for
 * tests of the XDP dispatcher chain (order, proceedon, dispatcher_return).
 *
 * Section "xdp", function "xdp_verdict".
 *
 * globaldata:
 *   verdict  __u32, 4 bytes little-endian, returned as is, unchecked:
 *            AAAAAA== aborted (0), AQAAAA== drop (1), AgAAAA== pass (2,
 *            default), AwAAAA== tx (3), BAAAAA== redirect (4),
 *            HwAAAA== dispatcher_return (31).
 *
 * Map hits: BPF_MAP_TYPE_ARRAY, one entry, key __u32 0, value __u64 = number
 * of runs, incremented atomically.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

/* volatile keeps clang from folding the value in: the loader rewrites it. */
volatile const __u32 verdict = XDP_PASS;

SEC("xdp")
int xdp_verdict(struct xdp_md *ctx)
{
	__u32 slot = 0;
	__u64 *runs = bpf_map_lookup_elem(&hits, &slot);

	if (runs)
		__sync_fetch_and_add(runs, 1);

	return verdict;
}

char _license[] SEC("license") = "Dual BSD/GPL";
