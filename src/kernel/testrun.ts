/** BPF_PROG_TEST_RUN: runs a loaded program on a packet without any traffic. */
import { check } from './errno.js';
import { Fd } from './fd.js';
import { BpfTestRunOpts, ffi, koffi, TestRunOpts } from './ffi.js';

export interface TestRunResult {
  returnValue: number;
  /** Average time per run as the kernel measured it. */
  durationNs: number;
}

export function testRun(program: Fd, packet: Buffer, repeat = 1): TestRunResult {
  const options: TestRunOpts = {
    sz: koffi.sizeof(BpfTestRunOpts),
    data_in: packet,
    data_out: null,
    data_size_in: packet.length,
    data_size_out: 0,
    ctx_in: null,
    ctx_out: null,
    ctx_size_in: 0,
    ctx_size_out: 0,
    retval: 0,
    repeat,
    duration: 0,
    flags: 0,
    cpu: 0,
    batch_size: 0,
  };
  check(ffi().bpf_prog_test_run_opts(program.value, options), 'BPF_PROG_TEST_RUN on', 'program');
  return { returnValue: options.retval | 0, durationNs: options.duration };
}
