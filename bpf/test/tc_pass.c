// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_pass: returns TC_ACT_OK and does nothing else, the TC twin of xdp_pass
 * for the dispatcher benchmark.
 *
 * Section "classifier", function "tc_pass". No maps, no globals.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("classifier")
int tc_pass(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
