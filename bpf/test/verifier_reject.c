// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * verifier_reject: compiles cleanly, but the kernel verifier refuses it.
 *
 * It reads a packet byte without first checking it against data_end, so
 * loading it fails with "invalid access to packet" in the verifier log.
 * Integration tests use it to check the NotLoaded condition and the
 * verifier-log tail in its message.
 *
 * Section "xdp/reject", function "xdp_reject", no maps, no globals.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp/reject")
int xdp_reject(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;

	/* Deliberately no "data + 13 > data_end" test before the read. */
	return data[12] == 0x08 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "Dual BSD/GPL";
