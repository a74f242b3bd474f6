/* An XDP program whose map asks libbpf to pin it by name (LIBBPF_PIN_BY_NAME). The daemon
 * must keep such pins inside its own bpffs root, not in libbpf's default /sys/fs/bpf. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpfd_test_pinned_hits SEC(".maps");

SEC("xdp")
int pinned_by_name(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *hits = bpf_map_lookup_elem(&bpfd_test_pinned_hits, &key);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
