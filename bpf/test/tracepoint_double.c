// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tracepoint_double: a second build of tracepoint_counter (same section, function, map and
 * global) that counts each openat(2) twice. Tests push it under a tag that held the first
 * build, so a moved tag shows up as a new program that counts differently.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tracepoint_stats_map SEC(".maps");

volatile const __u32 match_tgid = 0;

SEC("tracepoint/syscalls/sys_enter_openat")
int tracepoint_openat(void *ctx)
{
	__u32 caller_tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 slot = 0;
	__u64 *count;

	if (match_tgid != 0 && caller_tgid != match_tgid)
		return 0;

	count = bpf_map_lookup_elem(&tracepoint_stats_map, &slot);
	if (count)
		__sync_fetch_and_add(count, 2);

	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
