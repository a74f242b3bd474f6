/* TC dispatcher: runs the chain of one interface and direction in priority order.
 * See dispatcher.h. TC codes start at TC_ACT_UNSPEC (-1), so code c is bit c + 1. */
#include "dispatcher.h"

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_DISPATCHER_RETURN 30

DEFINE_RUN_PROGRAM(struct __sk_buff, 30)

SEC("tc")
int tc_dispatcher(struct __sk_buff *ctx)
{
	for (__u32 slot = 0; slot < MAX_DISPATCHER_PROGRAMS; slot++) {
		if (slot >= program_count)
			break;

		int verdict = run_program(ctx, slot);

		if (verdict < TC_ACT_UNSPEC || verdict > TC_DISPATCHER_RETURN)
			return verdict;
		if (proceed_on[slot] & (1U << (verdict + 1)))
			continue;
		return verdict == TC_DISPATCHER_RETURN ? TC_ACT_OK : verdict;
	}
	return TC_ACT_OK;
}
