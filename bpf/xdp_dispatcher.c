/* XDP dispatcher: runs the chain of one interface in priority order. See dispatcher.h. */
#include "dispatcher.h"

#define XDP_DISPATCHER_RETURN 31
#define PASS_VERDICT XDP_PASS

DEFINE_SLOTS(struct xdp_md, 31)

/* A code outside 0..31 cannot be in a proceed-on mask: it ends the chain. */
static __always_inline int goes_on(__u32 slot, int verdict)
{
	return verdict >= 0 && verdict <= XDP_DISPATCHER_RETURN &&
	       (proceed_on[slot] & (1U << verdict));
}

/* "Go on" with nowhere left to go on to means the hook's pass verdict. */
static __always_inline int final_verdict(int verdict)
{
	return verdict == XDP_DISPATCHER_RETURN ? XDP_PASS : verdict;
}

SEC("xdp")
int xdp_dispatcher(struct xdp_md *ctx)
{
	int verdict;

	RUN_CHAIN()
}
