/**
 * Loading one program out of an ELF object: pick it by section name, set its type, patch global
 * variables, load, pin the program and its maps.
 */
import fs from 'node:fs';
import path from 'node:path';

import { BpfdError } from '../errors.js';
import { faultPoint } from '../fault.js';
import { pinObject, removePins } from './bpffs.js';
import { check, errnoName } from './errno.js';
import { Fd } from './fd.js';
import {
  BPF_PROG_TYPE_XDP,
  BPF_XDP,
  BpfObjectOpenOpts,
  BTF_KIND_DATASEC,
  ffi,
  koffi,
} from './ffi.js';
import { programInfo } from './info.js';
import { withLibbpfOutput } from './libbpf-log.js';

const VERIFIER_LOG_TAIL_LINES = 12;
const VERIFIER_LOG_TAIL_CHARS = 1500;

/** The object file cannot be used: missing, not ELF, no such program, bad global data. */
export class BytecodeError extends BpfdError {
  constructor(message: string, code = 'BPFD_E_BYTECODE') {
    super(code, message);
  }
}

/**
 * The kernel refused the object for a reason other than the verifier: a map it cannot create
 * (ENOMEM, E2BIG, EPERM), a relocation it cannot apply. The bytecode was found and read, so this
 * is a program that is not loaded, not a bytecode selector problem.
 */
export class LoadError extends BpfdError {
  readonly errno: number;

  constructor(message: string, errno: number) {
    super('BPFD_E_LOAD', message);
    this.errno = errno;
  }
}

/** The kernel refused the program; `verifierLog` holds the tail of its log. */
export class VerifierError extends BpfdError {
  readonly errno: number;
  readonly verifierLog: string;

  constructor(message: string, errno: number, verifierLog: string) {
    super('BPFD_E_VERIFIER', message);
    this.errno = errno;
    this.verifierLog = verifierLog;
  }
}

export interface LoadRequest {
  objectPath: string;
  sectionName: string;
  programType: number;
  globalData: Map<string, Buffer>;
  /** Directory the program (`prog`) and its maps (`maps/<name>`) are pinned in. */
  pinDir: string;
  /** How messages name the object, e.g. `XdpProgram/firewall`. */
  subject: string;
}

export interface LoadedProgram {
  id: number;
  functionName: string;
  sectionName: string;
  programPin: string;
  /** map name → pin path */
  maps: Record<string, string>;
}

interface ProgramEntry {
  handle: unknown;
  functionName: string;
  sectionName: string;
}

export function programPinPath(pinDir: string): string {
  return path.join(pinDir, 'prog');
}

function listPrograms(object: unknown): ProgramEntry[] {
  const bindings = ffi();
  const programs: ProgramEntry[] = [];
  for (
    let handle = bindings.bpf_object__next_program(object, null);
    handle;
    handle = bindings.bpf_object__next_program(object, handle)
  ) {
    programs.push({
      handle,
      functionName: bindings.bpf_program__name(handle),
      sectionName: bindings.bpf_program__section_name(handle),
    });
  }
  return programs;
}

/**
 * bpfd's loader named programs by the part of the section after the first `/`
 * (`xdp/stats` → `stats`); the full section and the function name are accepted as well.
 */
export function selectProgram<T extends { functionName: string; sectionName: string }>(
  programs: T[],
  wanted: string,
  subject: string,
): T {
  const matches = programs.filter((program) => {
    const slash = program.sectionName.indexOf('/');
    const suffix = slash < 0 ? program.sectionName : program.sectionName.slice(slash + 1);
    return [program.sectionName, suffix, program.functionName].includes(wanted);
  });
  if (matches.length === 1) return matches[0];

  const available = programs.map((p) => `${p.functionName} (SEC("${p.sectionName}"))`).join(', ');
  const problem = matches.length === 0 ? 'has no program' : 'has several programs';
  throw new BytecodeError(
    `${subject}: sectionname "${wanted}": the object ${problem} matching it; ` +
      `programs in the object: ${available || 'none'}`,
    matches.length === 0 ? 'BPFD_E_NO_PROGRAM' : 'BPFD_E_AMBIGUOUS_PROGRAM',
  );
}

interface GlobalVariable {
  map: unknown;
  offset: number;
  size: number;
}

function readU32s(pointer: unknown, count: number): number[] {
  return koffi.decode(pointer, koffi.array('uint32_t', count)) as number[];
}

/** The data sections (DATASEC types) in the object's BTF, by name. */
function dataSections(btf: unknown): Map<string, number> {
  const bindings = ffi();
  const sections = new Map<string, number>();
  const count = bindings.btf__type_cnt(btf);
  for (let id = 1; id < count; id++) {
    const [nameOffset, info] = readU32s(bindings.btf__type_by_id(btf, id), 2);
    if (((info >>> 24) & 0x1f) === BTF_KIND_DATASEC) {
      sections.set(bindings.btf__name_by_offset(btf, nameOffset), id);
    }
  }
  return sections;
}

/**
 * libbpf names the map of a data section after the object plus the section (`counter.rodata`
 * for `.rodata`), so the section is the longest DATASEC name the map name ends with.
 */
function sectionOfMap(mapName: string, sections: Map<string, number>): number | undefined {
  const names = [...sections.keys()].filter((name) => mapName.endsWith(name));
  names.sort((a, b) => b.length - a.length);
  return names.length > 0 ? sections.get(names[0]) : undefined;
}

/** Every global variable of the object's data sections (.rodata, .data, .bss...) by name. */
function globalVariables(object: unknown): Map<string, GlobalVariable> {
  const bindings = ffi();
  const btf = bindings.bpf_object__btf(object);
  const variables = new Map<string, GlobalVariable>();
  if (!btf) return variables;
  const sections = dataSections(btf);

  for (
    let map = bindings.bpf_object__next_map(object, null);
    map;
    map = bindings.bpf_object__next_map(object, map)
  ) {
    if (!bindings.bpf_map__is_internal(map)) continue;
    const sectionId = sectionOfMap(bindings.bpf_map__name(map), sections);
    if (sectionId === undefined) continue;

    // struct btf_type { name_off, info, size } then vlen × btf_var_secinfo { type, offset, size }
    const section = bindings.btf__type_by_id(btf, sectionId);
    const count = readU32s(section, 2)[1] & 0xffff;
    const words = readU32s(section, 3 + 3 * count);
    for (let i = 0; i < count; i++) {
      const [typeId, offset, size] = words.slice(3 + 3 * i, 6 + 3 * i);
      const variable = bindings.btf__type_by_id(btf, typeId);
      const name = bindings.btf__name_by_offset(btf, readU32s(variable, 1)[0]);
      variables.set(name, { map, offset, size });
    }
  }
  return variables;
}

/** Replaces the initial value of each named global with the given bytes. */
export function applyGlobalData(object: unknown, globalData: Map<string, Buffer>, subject: string) {
  if (globalData.size === 0) return;
  const bindings = ffi();
  const variables = globalVariables(object);
  const patches = new Map<unknown, Buffer>();

  for (const [name, bytes] of globalData) {
    const variable = variables.get(name);
    if (!variable) {
      const known = [...variables.keys()].sort().join(', ') || 'none (no BTF data sections)';
      throw new BytecodeError(
        `${subject}: globaldata "${name}": the object has no global variable of that name; ` +
          `globals in the object: ${known}`,
        'BPFD_E_GLOBALDATA',
      );
    }
    if (variable.size !== bytes.length) {
      throw new BytecodeError(
        `${subject}: globaldata "${name}": ${bytes.length} bytes given, ` +
          `the variable has ${variable.size}`,
        'BPFD_E_GLOBALDATA',
      );
    }

    let image = patches.get(variable.map);
    if (!image) {
      const size = [0];
      const pointer = bindings.bpf_map__initial_value(variable.map, size);
      image = Buffer.from(koffi.decode(pointer, koffi.array('uint8_t', size[0])) as number[]);
      patches.set(variable.map, image);
    }
    bytes.copy(image, variable.offset);
  }

  for (const [map, image] of patches) {
    check(
      bindings.bpf_map__set_initial_value(map, image, image.length),
      'bpf_map__set_initial_value',
      subject,
    );
  }
}

function verifierLogTail(output: string): string {
  const begin = output.indexOf('-- BEGIN PROG LOAD LOG --');
  const end = output.indexOf('-- END PROG LOAD LOG --');
  const log = begin >= 0 ? output.slice(begin + 26, end >= 0 ? end : undefined) : output;
  const lines = log
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line.length > 0);
  return lines.slice(-VERIFIER_LOG_TAIL_LINES).join('\n').slice(-VERIFIER_LOG_TAIL_CHARS);
}

/** A refusal by the verifier quotes its log; any other failure quotes libbpf's last words. */
function loadFailure(errno: number, functionName: string, subject: string, output: string) {
  if (output.includes('-- BEGIN PROG LOAD LOG --')) {
    const log = verifierLogTail(output);
    return new VerifierError(
      `${subject}: the kernel refused program ${functionName} ` +
        `(${errnoName(errno)})${log ? `; verifier log ends with:\n${log}` : ''}`,
      errno,
      log,
    );
  }
  // libbpf's notes about BTF it could not load and ignored are not the reason.
  const lastLines = output
    .trim()
    .split('\n')
    .filter((line) => !/ignoring|^\s*$|^\s*-- (BEGIN|END) /.test(line))
    .slice(-3)
    .join('; ');
  return new LoadError(
    `${subject}: loading program ${functionName} failed (${errnoName(errno)})` +
      (lastLines ? `: ${lastLines}` : ''),
    errno,
  );
}

function pinObjectMaps(object: unknown, pinDir: string): Record<string, string> {
  const bindings = ffi();
  const maps: Record<string, string> = {};
  for (
    let map = bindings.bpf_object__next_map(object, null);
    map;
    map = bindings.bpf_object__next_map(object, map)
  ) {
    // .rodata/.data/.bss are reachable through the program; their names cannot be pinned.
    if (bindings.bpf_map__is_internal(map)) continue;
    const name = bindings.bpf_map__name(map);
    if (bindings.bpf_map__is_pinned(map)) {
      maps[name] = bindings.bpf_map__pin_path(map);
      continue;
    }
    const pinPath = path.join(pinDir, 'maps', name);
    pinObject(new Fd(bindings.bpf_map__fd(map)), pinPath);
    maps[name] = pinPath;
  }
  return maps;
}

/** Opens the object, loads the selected program into the kernel and pins it with its maps. */
export function loadProgram(request: LoadRequest): LoadedProgram {
  const bindings = ffi();
  const { subject } = request;

  return withLibbpfOutput((output) => {
    // Maps declared with LIBBPF_PIN_BY_NAME are pinned by libbpf under pin_root_path: keep
    // them inside the program's own dir instead of libbpf's default /sys/fs/bpf.
    const openOptions = {
      sz: koffi.sizeof(BpfObjectOpenOpts),
      object_name: null,
      relaxed_maps: false,
      pin_root_path: path.join(request.pinDir, 'maps'),
    };
    const object = bindings.bpf_object__open_file(request.objectPath, openOptions);
    if (!object) {
      const errno = koffi.errno();
      throw new BytecodeError(
        `${subject}: cannot open bytecode ${request.objectPath}: ${errnoName(errno)}` +
          (output() ? ` (${output().trim().split('\n').pop()})` : ''),
        'BPFD_E_BYTECODE_OPEN',
      );
    }

    try {
      const programs = listPrograms(object);
      const selected = selectProgram(programs, request.sectionName, subject);
      for (const program of programs) {
        check(
          bindings.bpf_program__set_autoload(program.handle, program === selected),
          'bpf_program__set_autoload',
          subject,
        );
      }
      check(
        bindings.bpf_program__set_type(selected.handle, request.programType),
        'bpf_program__set_type',
        subject,
      );
      // A program array only takes programs of its owner's attach type; XDP programs from
      // sections such as `xdp/stats` would otherwise get none.
      check(
        bindings.bpf_program__set_expected_attach_type(
          selected.handle,
          request.programType === BPF_PROG_TYPE_XDP ? BPF_XDP : 0,
        ),
        'bpf_program__set_expected_attach_type',
        subject,
      );
      applyGlobalData(object, request.globalData, subject);

      fs.mkdirSync(path.join(request.pinDir, 'maps'), { recursive: true, mode: 0o700 });
      const result = bindings.bpf_object__load(object);
      if (result < 0) throw loadFailure(-result, selected.functionName, subject, output());

      return pinLoaded(object, selected, request);
    } catch (err) {
      removePins(request.pinDir);
      throw err;
    } finally {
      bindings.bpf_object__close(object);
    }
  });
}

/** Maps first, the program last: a program pin means the dir is complete (a crash between
 * the two leaves a dir without `prog`, which the next reconcile loads again). */
function pinLoaded(object: unknown, selected: ProgramEntry, request: LoadRequest): LoadedProgram {
  const bindings = ffi();
  const programPin = programPinPath(request.pinDir);
  try {
    const maps = pinObjectMaps(object, request.pinDir);
    faultPoint('after-map-pins');
    const programFd = new Fd(
      check(bindings.bpf_program__fd(selected.handle), 'fd of', request.subject),
    );
    pinObject(programFd, programPin);
    return {
      id: programInfo(programFd, request.subject).id,
      functionName: selected.functionName,
      sectionName: selected.sectionName,
      programPin,
      maps,
    };
  } catch (err) {
    removePins(request.pinDir);
    throw err;
  }
}
