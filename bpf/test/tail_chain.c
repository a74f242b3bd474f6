// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tail_chain: one link of a plain tail-call chain, the baseline the dispatcher
 * benchmark compares against. Each loaded copy jumps to the program in slot 0
 * of its own `next` array; the last copy, whose array is empty, returns
 * XDP_PASS. Map and key are constants, so the JIT can patch a direct jump.
 *
 * Section "xdp", function "tail_chain". Map next: BPF_MAP_TYPE_PROG_ARRAY,
 * one entry.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} next SEC(".maps");

SEC("xdp")
int tail_chain(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &next, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
