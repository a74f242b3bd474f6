/* Shared pieces of the XDP and TC dispatchers.
 *
 * A dispatcher revision is loaded once per chain: `program_count` and `proceed_on` live in
 * .rodata, so the verifier sees them as constants and prunes the positions past the chain's
 * end. The programs themselves sit in the `chain` program array, filled before the revision is
 * attached. Each program runs through a tail call made from a subprogram: the tail call
 * replaces only the subprogram's frame, so the callee's verdict comes back to the dispatcher.
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

/* One subprogram per slot, each with its slot number as a constant: a tail call whose map and
 * key are constants is patched by the JIT into a direct jump, where a key in a register goes
 * through an indirect (retpoline) jump on every packet. An empty slot (a program removed while
 * a packet was in flight) answers `missing_code`, which the chain treats as "go on". The asm
 * hides that constant from clang, which would otherwise assume the tail call falls through. */
#define DEFINE_SLOT(ctx_type, missing_code, slot)                                            \
	__attribute__((noinline)) int run_slot_##slot(ctx_type *ctx)                          \
	{                                                                                     \
		int missing;                                                                  \
                                                                                              \
		bpf_tail_call(ctx, &chain, slot);                                             \
		asm volatile("%0 = " #missing_code : "=r"(missing));                          \
		return missing;                                                               \
	}

#define DEFINE_SLOTS_8(ctx_type, missing_code, a, b, c, d, e, f, g, h)                       \
	DEFINE_SLOT(ctx_type, missing_code, a)                                                \
	DEFINE_SLOT(ctx_type, missing_code, b)                                                \
	DEFINE_SLOT(ctx_type, missing_code, c)                                                \
	DEFINE_SLOT(ctx_type, missing_code, d)                                                \
	DEFINE_SLOT(ctx_type, missing_code, e)                                                \
	DEFINE_SLOT(ctx_type, missing_code, f)                                                \
	DEFINE_SLOT(ctx_type, missing_code, g)                                                \
	DEFINE_SLOT(ctx_type, missing_code, h)

/* run_slot_0 .. run_slot_31 */
#define DEFINE_SLOTS(ctx_type, missing_code)                                                  \
	DEFINE_SLOTS_8(ctx_type, missing_code, 0, 1, 2, 3, 4, 5, 6, 7)                         \
	DEFINE_SLOTS_8(ctx_type, missing_code, 8, 9, 10, 11, 12, 13, 14, 15)                   \
	DEFINE_SLOTS_8(ctx_type, missing_code, 16, 17, 18, 19, 20, 21, 22, 23)                 \
	DEFINE_SLOTS_8(ctx_type, missing_code, 24, 25, 26, 27, 28, 29, 30, 31)

/* One position of the chain, unrolled: stop with the hook's pass verdict past the last program,
 * else run the program and go on only when `goes_on(slot, verdict)` says so. */
#define STEP(slot)                                                                            \
	if (program_count <= slot)                                                            \
		return PASS_VERDICT;                                                          \
	verdict = run_slot_##slot(ctx);                                                       \
	if (!goes_on(slot, verdict))                                                          \
		return final_verdict(verdict);

#define STEPS_8(a, b, c, d, e, f, g, h) STEP(a) STEP(b) STEP(c) STEP(d) STEP(e) STEP(f) STEP(g) STEP(h)

#define RUN_CHAIN()                                                                           \
	STEPS_8(0, 1, 2, 3, 4, 5, 6, 7)                                                       \
	STEPS_8(8, 9, 10, 11, 12, 13, 14, 15)                                                 \
	STEPS_8(16, 17, 18, 19, 20, 21, 22, 23)                                               \
	STEPS_8(24, 25, 26, 27, 28, 29, 30, 31)                                               \
	return PASS_VERDICT;

char _license[] SEC("license") = "GPL";

#endif
