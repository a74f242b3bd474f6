// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_pass: returns XDP_PASS and does nothing else, so that a benchmark of
 * the dispatcher measures the cost of dispatching, not of the program.
 *
 * Section "xdp", function "xdp_pass". No maps, no globals.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
