/**
 * The raw kernel ABI in one declarative place: libbpf and libc functions, struct offsets and
 * constants. Everything else in src/kernel wraps these in small typed classes.
 */
import koffi from 'koffi';

import { BpfdError } from '../errors.js';

export const LIBBPF_SONAME = 'libbpf.so.1';

// enum bpf_prog_type
export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_PROG_TYPE_TRACEPOINT = 5;
export const BPF_PROG_TYPE_XDP = 6;

// enum bpf_attach_type (TCX values are newer than the system headers)
export const BPF_XDP = 37;
export const BPF_PERF_EVENT = 41;
export const BPF_TCX_INGRESS = 46;
export const BPF_TCX_EGRESS = 47;

// enum bpf_link_type
export const BPF_LINK_TYPE_XDP = 6;
export const BPF_LINK_TYPE_PERF_EVENT = 7;
export const BPF_LINK_TYPE_TCX = 11;

export const XDP_FLAGS_SKB_MODE = 1 << 1;
export const XDP_FLAGS_DRV_MODE = 1 << 2;

// BTF
export const BTF_KIND_VAR = 14;
export const BTF_KIND_DATASEC = 15;

// struct bpf_prog_info / bpf_link_info / bpf_map_info layouts (linux/bpf.h)
export const PROG_INFO_SIZE = 232;
export const PROG_INFO_ID = 4;
export const PROG_INFO_NAME = 64;
export const PROG_INFO_RUN_TIME_NS = 192;
export const PROG_INFO_RUN_CNT = 200;
export const LINK_INFO_SIZE = 48;
export const LINK_INFO_TYPE = 0;
export const LINK_INFO_ID = 4;
export const LINK_INFO_PROG_ID = 8;
export const LINK_INFO_IFINDEX = 16;
export const LINK_INFO_ATTACH_TYPE = 20;
export const MAP_INFO_SIZE = 88;
export const MAP_INFO_TYPE = 0;
export const MAP_INFO_ID = 4;

// sizeof(struct bpf_link_create_opts) and (struct bpf_test_run_opts) in libbpf 1.1
export const LINK_CREATE_OPTS_SIZE = 64;

export const BPF_FS_MAGIC = 0xcafe4a11;

/** The leading fields of struct bpf_object_open_opts (libbpf 1.1); `sz` says how many. */
export const BpfObjectOpenOpts = koffi.struct('bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
});

const BpfTestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

export interface TestRunOpts {
  sz: number;
  data_in: Buffer | null;
  data_out: Buffer | null;
  data_size_in: number;
  data_size_out: number;
  ctx_in: null;
  ctx_out: null;
  ctx_size_in: number;
  ctx_size_out: number;
  retval: number;
  repeat: number;
  duration: number;
  flags: number;
  cpu: number;
  batch_size: number;
}

/** Raised when libbpf.so.1 cannot be loaded at all. */
export class LibbpfMissingError extends BpfdError {
  constructor(cause: unknown) {
    super(
      'BPFD_E_LIBBPF',
      `cannot load ${LIBBPF_SONAME}: install the libbpf1 package ` +
        `(${cause instanceof Error ? cause.message : String(cause)})`,
    );
  }
}

function bind() {
  let libbpf: koffi.IKoffiLib;
  try {
    libbpf = koffi.load(LIBBPF_SONAME);
  } catch (err) {
    throw new LibbpfMissingError(err);
  }
  const libc = koffi.load('libc.so.6');
  const printFn = koffi.proto('int bpfd_libbpf_print_fn(int level, const char *fmt, void *args)');

  return {
    printFn,
    // libbpf: objects and programs
    bpf_object__open_file: libbpf.func(
      'void *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)',
    ),
    bpf_object__load: libbpf.func('int bpf_object__load(void *obj)'),
    bpf_object__close: libbpf.func('void bpf_object__close(void *obj)'),
    bpf_object__btf: libbpf.func('void *bpf_object__btf(void *obj)'),
    bpf_object__next_program: libbpf.func('void *bpf_object__next_program(void *obj, void *prog)'),
    bpf_object__next_map: libbpf.func('void *bpf_object__next_map(void *obj, void *map)'),
    bpf_program__name: libbpf.func('const char *bpf_program__name(void *prog)'),
    bpf_program__section_name: libbpf.func('const char *bpf_program__section_name(void *prog)'),
    bpf_program__set_autoload: libbpf.func('int bpf_program__set_autoload(void *prog, bool on)'),
    bpf_program__set_type: libbpf.func('int bpf_program__set_type(void *prog, int type)'),
    bpf_program__set_expected_attach_type: libbpf.func(
      'int bpf_program__set_expected_attach_type(void *prog, int type)',
    ),
    bpf_program__set_log_buf: libbpf.func(
      'int bpf_program__set_log_buf(void *prog, _Out_ uint8_t *buf, size_t size)',
    ),
    bpf_program__set_log_level: libbpf.func(
      'int bpf_program__set_log_level(void *prog, uint32_t level)',
    ),
    bpf_program__fd: libbpf.func('int bpf_program__fd(void *prog)'),
    bpf_program__attach_tracepoint: libbpf.func(
      'void *bpf_program__attach_tracepoint(void *prog, const char *category, const char *name)',
    ),
    bpf_map__name: libbpf.func('const char *bpf_map__name(void *map)'),
    bpf_map__is_internal: libbpf.func('bool bpf_map__is_internal(void *map)'),
    bpf_map__fd: libbpf.func('int bpf_map__fd(void *map)'),
    bpf_map__is_pinned: libbpf.func('bool bpf_map__is_pinned(void *map)'),
    bpf_map__pin_path: libbpf.func('const char *bpf_map__pin_path(void *map)'),
    bpf_map__initial_value: libbpf.func(
      'void *bpf_map__initial_value(void *map, _Out_ size_t *size)',
    ),
    bpf_map__set_initial_value: libbpf.func(
      'int bpf_map__set_initial_value(void *map, const uint8_t *data, size_t size)',
    ),
    bpf_link__fd: libbpf.func('int bpf_link__fd(void *link)'),
    bpf_link__disconnect: libbpf.func('void bpf_link__disconnect(void *link)'),
    bpf_link__destroy: libbpf.func('int bpf_link__destroy(void *link)'),
    btf__find_by_name_kind: libbpf.func(
      'int btf__find_by_name_kind(void *btf, const char *name, uint32_t kind)',
    ),
    btf__type_cnt: libbpf.func('uint32_t btf__type_cnt(void *btf)'),
    btf__type_by_id: libbpf.func('const void *btf__type_by_id(void *btf, uint32_t id)'),
    btf__name_by_offset: libbpf.func('const char *btf__name_by_offset(void *btf, uint32_t off)'),
    libbpf_set_print: libbpf.func('void *libbpf_set_print(bpfd_libbpf_print_fn *fn)'),
    // libbpf: thin syscall wrappers
    bpf_obj_get: libbpf.func('int bpf_obj_get(const char *path)'),
    bpf_obj_pin: libbpf.func('int bpf_obj_pin(int fd, const char *path)'),
    bpf_obj_get_info_by_fd: libbpf.func(
      'int bpf_obj_get_info_by_fd(int fd, _Inout_ uint8_t *info, _Inout_ uint32_t *len)',
    ),
    bpf_link_create: libbpf.func(
      'int bpf_link_create(int prog_fd, int target_fd, int type, const uint8_t *opts)',
    ),
    bpf_link_update: libbpf.func('int bpf_link_update(int link_fd, int prog_fd, void *opts)'),
    bpf_xdp_query: libbpf.func('int bpf_xdp_query(int ifindex, int flags, _Inout_ uint8_t *opts)'),
    bpf_link_detach: libbpf.func('int bpf_link_detach(int link_fd)'),
    bpf_map_update_elem: libbpf.func(
      'int bpf_map_update_elem(int fd, const uint8_t *key, const uint8_t *value, uint64_t flags)',
    ),
    bpf_map_lookup_elem: libbpf.func(
      'int bpf_map_lookup_elem(int fd, const uint8_t *key, _Out_ uint8_t *value)',
    ),
    bpf_map_delete_elem: libbpf.func('int bpf_map_delete_elem(int fd, const uint8_t *key)'),
    bpf_prog_test_run_opts: libbpf.func(
      'int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)',
    ),
    bpf_prog_get_next_id: libbpf.func(
      'int bpf_prog_get_next_id(uint32_t start, _Out_ uint32_t *next)',
    ),
    bpf_map_get_next_id: libbpf.func(
      'int bpf_map_get_next_id(uint32_t start, _Out_ uint32_t *next)',
    ),
    bpf_link_get_next_id: libbpf.func(
      'int bpf_link_get_next_id(uint32_t start, _Out_ uint32_t *next)',
    ),
    bpf_prog_get_fd_by_id: libbpf.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    bpf_link_get_fd_by_id: libbpf.func('int bpf_link_get_fd_by_id(uint32_t id)'),
    // libc
    close: libc.func('int close(int fd)'),
    if_nametoindex: libc.func('unsigned int if_nametoindex(const char *name)'),
    if_indextoname: libc.func('char *if_indextoname(unsigned int index, _Out_ uint8_t *name)'),
    vsnprintf: libc.func(
      'int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *ap)',
    ),
    mount: libc.func(
      'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
    ),
    statfs: libc.func('int statfs(const char *path, _Out_ uint8_t *buf)'),
    socket: libc.func('int socket(int domain, int type, int protocol)'),
    sendto: libc.func(
      'long sendto(int fd, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t addrlen)',
    ),
    syscall: libc.func('long syscall(long number, ...)'),
  };
}

export type Ffi = ReturnType<typeof bind>;
export { BpfTestRunOpts };

let bound: Ffi | undefined;

/** Binds libbpf and libc on first use, so commands that need no kernel never load them. */
export function ffi(): Ffi {
  bound ??= bind();
  return bound;
}

/** The errno of the last failed libc/libbpf call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

export { koffi };
