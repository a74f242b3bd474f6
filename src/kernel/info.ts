/** Reading kernel objects: ids, program/link info, enumeration of everything loaded. */
import { check } from './errno.js';
import { Fd } from './fd.js';
import {
  ffi,
  LINK_INFO_ATTACH_TYPE,
  LINK_INFO_ID,
  LINK_INFO_IFINDEX,
  LINK_INFO_PROG_ID,
  LINK_INFO_SIZE,
  LINK_INFO_TYPE,
  MAP_INFO_ID,
  MAP_INFO_SIZE,
  MAP_INFO_TYPE,
  PROG_INFO_ID,
  PROG_INFO_NAME,
  PROG_INFO_RUN_CNT,
  PROG_INFO_RUN_TIME_NS,
  PROG_INFO_SIZE,
} from './ffi.js';

export interface ProgramInfo {
  id: number;
  name: string;
  runTimeNs: bigint;
  runCount: bigint;
}

export interface LinkInfo {
  id: number;
  type: number;
  programId: number;
  /** XDP and TCX links: the interface, 0 once the interface is gone. */
  ifindex: number;
  attachType: number;
}

export interface MapInfo {
  id: number;
  type: number;
}

function objectInfo(fd: Fd, size: number, subject: string): Buffer {
  const buffer = Buffer.alloc(size);
  const length = [size];
  check(ffi().bpf_obj_get_info_by_fd(fd.value, buffer, length), 'bpf_obj_get_info_by_fd', subject);
  return buffer;
}

export function programInfo(fd: Fd, subject = 'program'): ProgramInfo {
  const info = objectInfo(fd, PROG_INFO_SIZE, subject);
  const nameBytes = info.subarray(PROG_INFO_NAME, PROG_INFO_NAME + 16);
  const end = nameBytes.indexOf(0);
  return {
    id: info.readUInt32LE(PROG_INFO_ID),
    name: nameBytes.subarray(0, end < 0 ? 16 : end).toString('utf8'),
    runTimeNs: info.readBigUInt64LE(PROG_INFO_RUN_TIME_NS),
    runCount: info.readBigUInt64LE(PROG_INFO_RUN_CNT),
  };
}

export function linkInfo(fd: Fd, subject = 'link'): LinkInfo {
  const info = objectInfo(fd, LINK_INFO_SIZE, subject);
  return {
    id: info.readUInt32LE(LINK_INFO_ID),
    type: info.readUInt32LE(LINK_INFO_TYPE),
    programId: info.readUInt32LE(LINK_INFO_PROG_ID),
    ifindex: info.readUInt32LE(LINK_INFO_IFINDEX),
    attachType: info.readUInt32LE(LINK_INFO_ATTACH_TYPE),
  };
}

export function mapInfo(fd: Fd, subject = 'map'): MapInfo {
  const info = objectInfo(fd, MAP_INFO_SIZE, subject);
  return { id: info.readUInt32LE(MAP_INFO_ID), type: info.readUInt32LE(MAP_INFO_TYPE) };
}

type NextId = (start: number, next: number[]) => number;

function listIds(nextId: NextId): number[] {
  const ids: number[] = [];
  const next = [0];
  let start = 0;
  while (nextId(start, next) === 0) {
    ids.push(next[0]);
    start = next[0];
  }
  return ids;
}

/** Every program, map and link id in the kernel (for leak checks and conflict reports). */
export function kernelObjectIds(): { programs: number[]; maps: number[]; links: number[] } {
  const bindings = ffi();
  return {
    programs: listIds(bindings.bpf_prog_get_next_id),
    maps: listIds(bindings.bpf_map_get_next_id),
    links: listIds(bindings.bpf_link_get_next_id),
  };
}

export function programFdById(id: number): Fd {
  return new Fd(check(ffi().bpf_prog_get_fd_by_id(id), 'bpf_prog_get_fd_by_id', `id ${id}`));
}

export function linkFdById(id: number): Fd {
  return new Fd(check(ffi().bpf_link_get_fd_by_id(id), 'bpf_link_get_fd_by_id', `id ${id}`));
}
