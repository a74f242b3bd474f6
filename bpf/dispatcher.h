/* Shared pieces of the XDP and TC dispatchers.
 *
 * A dispatcher revision is loaded once per chain: `program_count` and `proceed_on` live in
 * .rodata, so the verifier sees them as constants and the loop below is bounded by the real
 * chain length. The programs themselves sit in the `chain` program array, filled before the
 * revision is attached. Each program runs through a tail call made from a subprogram: the tail
 * call replaces only the subprogram's frame, so the callee's verdict comes back to the loop.
 * This needs neither freplace nor fentry, which some kernels refuse.
 *
 * The kernel allows 33 tail calls per packet in all, counted across the whole call tree, so a
 * chain holds at most 32 programs that make no tail calls of their own.
 */
#ifndef BPFD_DISPATCHER_H
#define BPFD_DISPATCHER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_DISPATCHER_PROGRAMS 32

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, MAX_DISPATCHER_PROGRAMS);
	__type(key, __u32);
	__type(value, __u32);
} chain SEC(".maps");

/* Set by the daemon before load, one revision per chain. */
volatile const __u32 program_count = 0;
/* Bit masks of the return codes on which the chain goes on, one per position. */
volatile const __u32 proceed_on[MAX_DISPATCHER_PROGRAMS] = {};

/* Runs the program at `slot` and returns its verdict. An empty slot (a program removed while a
 * packet was in flight) answers `missing`, which the chain treats as "go on". The asm hides the
 * constant from clang, which would otherwise assume the tail call always falls through. */
#define DEFINE_RUN_PROGRAM(ctx_type, missing_code)                                           \
	__attribute__((noinline)) int run_program(ctx_type *ctx, __u32 slot)                  \
	{                                                                                     \
		int missing;                                                                  \
                                                                                              \
		bpf_tail_call(ctx, &chain, slot);                                             \
		asm volatile("%0 = " #missing_code : "=r"(missing));                          \
		return missing;                                                               \
	}

char _license[] SEC("license") = "GPL";

#endif
