// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * multi: several programs in one object, to test how `sectionname` picks one.
 *
 *   section      function     map          adds per run
 *   xdp/first    first_prog   first_hits   data_value  (returns XDP_PASS)
 *   xdp/second   second_prog  second_hits  short_value (returns XDP_PASS)
 *   xdp/dup      dup_a        dup_a_hits   1           (returns XDP_PASS)
 *   tc/dup       dup_b        dup_b_hits   1           (returns TC_ACT_OK)
 *
 * "first", "second", the full section names and the function names are
 * unique; "dup" matches two sections and must be reported as ambiguous.
 * The program bodies never touch their context, so each one loads as XDP or
 * as TC, whichever kind the manifest asks for.
 *
 * Globals, for globaldata tests (sizes matter: a wrong size is an error):
 *   data_value   __u64 in .data,   initial 7
 *   short_value  __u16 in .rodata, initial 3
 * Because first_prog adds data_value and second_prog adds short_value, a
 * BPF_PROG_TEST_RUN followed by a map read shows the value the loader set.
 *
 * Every map: BPF_MAP_TYPE_ARRAY, one entry, key __u32 0, value __u64.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define DECLARE_HITS_MAP(map_name)                \
	struct {                                  \
		__uint(type, BPF_MAP_TYPE_ARRAY); \
		__uint(max_entries, 1);           \
		__type(key, __u32);               \
		__type(value, __u64);             \
	} map_name SEC(".maps")

DECLARE_HITS_MAP(first_hits);
DECLARE_HITS_MAP(second_hits);
DECLARE_HITS_MAP(dup_a_hits);
DECLARE_HITS_MAP(dup_b_hits);

__u64 data_value = 7;
volatile const __u16 short_value = 3;

static __always_inline void add_hits(void *hits_map, __u64 amount)
{
	__u32 slot = 0;
	__u64 *hits = bpf_map_lookup_elem(hits_map, &slot);

	if (hits)
		__sync_fetch_and_add(hits, amount);
}

SEC("xdp/first")
int first_prog(struct xdp_md *ctx)
{
	add_hits(&first_hits, data_value);
	return XDP_PASS;
}

SEC("xdp/second")
int second_prog(struct xdp_md *ctx)
{
	add_hits(&second_hits, short_value);
	return XDP_PASS;
}

SEC("xdp/dup")
int dup_a(struct xdp_md *ctx)
{
	add_hits(&dup_a_hits, 1);
	return XDP_PASS;
}

SEC("tc/dup")
int dup_b(struct __sk_buff *skb)
{
	add_hits(&dup_b_hits, 1);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
