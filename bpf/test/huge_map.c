// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * huge_map: an XDP program whose map the kernel cannot create.
 *
 * `huge_values` is an array of 2^30 entries of 64 bytes: 64 GiB, which no
 * test machine has, so map creation fails with ENOMEM (the allocation is
 * refused up front, nothing is reserved). The program itself is valid; a
 * test uses it to check that a failed map creation is reported on its own
 * object and leaves every other program alone.
 *
 * Section "xdp", function "xdp_huge_map".
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct big_value {
	__u64 words[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 30);
	__type(key, __u32);
	__type(value, struct big_value);
} huge_values SEC(".maps");

SEC("xdp")
int xdp_huge_map(struct xdp_md *ctx)
{
	__u32 slot = 0;
	struct big_value *value = bpf_map_lookup_elem(&huge_values, &slot);

	if (value)
		value->words[0]++;
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
