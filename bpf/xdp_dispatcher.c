/* XDP dispatcher: runs the chain of one interface in priority order. See dispatcher.h. */
#include "dispatcher.h"

#define XDP_DISPATCHER_RETURN 31

DEFINE_RUN_PROGRAM(struct xdp_md, 31)

SEC("xdp")
int xdp_dispatcher(struct xdp_md *ctx)
{
	for (__u32 slot = 0; slot < MAX_DISPATCHER_PROGRAMS; slot++) {
		if (slot >= program_count)
			break;

		int verdict = run_program(ctx, slot);

		/* A code outside 0..31 cannot be in a proceed-on mask: it ends the chain. */
		if (verdict < 0 || verdict > XDP_DISPATCHER_RETURN)
			return verdict;
		if (proceed_on[slot] & (1U << verdict))
			continue;
		/* "Go on" with nowhere left to go on to means the hook's pass verdict. */
		return verdict == XDP_DISPATCHER_RETURN ? XDP_PASS : verdict;
	}
	return XDP_PASS;
}
