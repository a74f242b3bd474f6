// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_counter: counts every packet and byte seen on the XDP hook, then returns
 * a verdict chosen at load time.
 *
 * Manifest: kind XdpProgram, sectionname "stats" (or "xdp/stats", or the
 * function name "xdp_stats").
 *
 * globaldata:
 *   verdict  __u32, 4 bytes little-endian, the XDP action returned:
 *            AgAAAA== = XDP_PASS (2, default), AQAAAA== = XDP_DROP (1),
 *            HwAAAA== = 31, the dispatcher's "go on to the next program".
 *
 * Map xdp_stats_map: BPF_MAP_TYPE_ARRAY, one entry.
 *   key   __u32 0
 *   value struct packet_counters, 16 bytes, host byte order:
 *         bytes 0..7  packets  number of packets seen
 *         bytes 8..15 bytes    sum of their lengths (data_end - data)
 */
#include <linux/bpf.h>
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
} xdp_stats_map SEC(".maps");

/* volatile keeps clang from folding the value in: the loader rewrites it. */
volatile const __u32 verdict = XDP_PASS;

SEC("xdp/stats")
int xdp_stats(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	__u32 slot = 0;
	struct packet_counters *counters;

	counters = bpf_map_lookup_elem(&xdp_stats_map, &slot);
	if (counters) {
		/* Several CPUs share the one entry, so add atomically. */
		__sync_fetch_and_add(&counters->packets, 1);
		__sync_fetch_and_add(&counters->bytes, (__u64)(data_end - data));
	}

	return verdict;
}

char _license[] SEC("license") = "Dual BSD/GPL";
