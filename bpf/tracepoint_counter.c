// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tracepoint_counter: counts openat(2) calls, from every process or from one.
 *
 * Manifest: kind TracepointProgram, name "syscalls/sys_enter_openat",
 * sectionname "tracepoint_openat" (the function name), or
 * "syscalls/sys_enter_openat" (the section after its first '/'), or the full
 * section name.
 *
 * globaldata:
 *   match_tgid  __u32, 4 bytes little-endian: 0 (AAAAAA==, default) counts
 *               every process; any other value counts only the process with
 *               that id (the tgid, what ps shows as PID), e.g. 1 = AQAAAA==.
 *
 * Map tracepoint_stats_map: BPF_MAP_TYPE_ARRAY, one entry.
 *   key   __u32 0
 *   value __u64, 8 bytes, host byte order: number of openat calls counted.
 * The kernel keeps only 15 characters of a map name, so bpftool lists this
 * map as "tracepoint_stat"; the pinned file keeps the full name.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tracepoint_stats_map SEC(".maps");

/* What one call adds; bpf/test/tracepoint_double.c builds this file with 2. */
#ifndef COUNT_STEP
#define COUNT_STEP 1
#endif

/* volatile keeps clang from folding the value in: the loader rewrites it. */
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
		__sync_fetch_and_add(count, COUNT_STEP);

	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
