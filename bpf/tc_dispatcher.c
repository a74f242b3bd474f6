/* TC dispatcher: runs the chain of one interface and direction in priority order.
 * See dispatcher.h. TC codes start at TC_ACT_UNSPEC (-1), so code c is bit c + 1. */
#include "dispatcher.h"

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_DISPATCHER_RETURN 30
#define PASS_VERDICT TC_ACT_OK

DEFINE_SLOTS(struct __sk_buff, 30)

static __always_inline int goes_on(__u32 slot, int verdict)
{
	return verdict >= TC_ACT_UNSPEC && verdict <= TC_DISPATCHER_RETURN &&
	       (proceed_on[slot] & (1U << (verdict + 1)));
}

static __always_inline int final_verdict(int verdict)
{
	return verdict == TC_DISPATCHER_RETURN ? TC_ACT_OK : verdict;
}

SEC("tc")
int tc_dispatcher(struct __sk_buff *ctx)
{
	int verdict;

	RUN_CHAIN()
}
