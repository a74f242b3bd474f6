// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_verdict: counts each run and returns a verdict chosen at load time, for
 * tests of the TC dispatcher chain (order, proceedon, dispatcher_return).
 *
 * Section "classifier", function "tc_verdict".
 *
 * globaldata:
 *   verdict  __s32, 4 bytes little-endian, returned as is, unchecked:
 *            /////w== unspec (-1), AAAAAA== ok (0, default),
 *            AgAAAA== shot (2), AwAAAA== pipe (3),
 *            HgAAAA== dispatcher_return (30).
 *
 * Map hits: BPF_MAP_TYPE_ARRAY, one entry, key __u32 0, value __u64 = number
 * of runs, incremented atomically.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

/* volatile keeps clang from folding the value in: the loader rewrites it. */
volatile const __s32 verdict = TC_ACT_OK;

SEC("classifier")
int tc_verdict(struct __sk_buff *skb)
{
	__u32 slot = 0;
	__u64 *runs = bpf_map_lookup_elem(&hits, &slot);

	if (runs)
		__sync_fetch_and_add(runs, 1);

	return verdict;
}

char _license[] SEC("license") = "Dual BSD/GPL";
