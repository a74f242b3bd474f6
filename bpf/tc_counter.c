// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_counter: counts every packet and byte seen on a TC hook (ingress or
 * egress), then returns a verdict chosen at load time.
 *
 * Manifest: kind TcProgram, sectionname "stats" (or "classifier/stats", or the
 * function name "tc_stats").
 *
 * globaldata:
 *   verdict  __s32, 4 bytes little-endian, the TC action returned:
 *            AAAAAA== = TC_ACT_OK (0, default), AgAAAA== = TC_ACT_SHOT (2),
 *            HgAAAA== = 30, the dispatcher's "go on to the next program".
 *
 * Map tc_stats_map: BPF_MAP_TYPE_ARRAY, one entry.
 *   key   __u32 0
 *   value struct packet_counters, 16 bytes, host byte order:
 *         bytes 0..7  packets  number of packets seen
 *         bytes 8..15 bytes    sum of their lengths (skb->len)
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct packet_counters {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct packet_counters);
} tc_stats_map SEC(".maps");

/* volatile keeps clang from folding the value in: the loader rewrites it. */
volatile const __s32 verdict = TC_ACT_OK;

SEC("classifier/stats")
int tc_stats(struct __sk_buff *skb)
{
	__u32 slot = 0;
	struct packet_counters *counters;

	counters = bpf_map_lookup_elem(&tc_stats_map, &slot);
	if (counters) {
		/* Several CPUs share the one entry, so add atomically. */
		__sync_fetch_and_add(&counters->packets, 1);
		__sync_fetch_and_add(&counters->bytes, skb->len);
	}

	return verdict;
}

char _license[] SEC("license") = "Dual BSD/GPL";
