/** Network interfaces of the daemon's network namespace. */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';

import { ffi } from './ffi.js';

const IF_NAMESIZE = 16;
const RTF_UP = 0x1;

/** The interface index, or undefined when no interface has that name. */
export function interfaceIndex(name: string): number | undefined {
  if (name.length === 0 || name.length >= IF_NAMESIZE) return undefined;
  const index = ffi().if_nametoindex(name);
  return index > 0 ? index : undefined;
}

export function interfaceName(index: number): string | undefined {
  const buffer = Buffer.alloc(IF_NAMESIZE);
  if (!ffi().if_indextoname(index, buffer)) return undefined;
  return buffer.toString('utf8', 0, buffer.indexOf(0));
}

function ipv4DefaultRoutes(): Array<{ iface: string; metric: number }> {
  const lines = fs.readFileSync('/proc/net/route', 'utf8').trim().split('\n').slice(1);
  return lines
    .map((line) => line.trim().split(/\s+/))
    .filter(
      (f) => f[1] === '00000000' && f[7] === '00000000' && (parseInt(f[3], 16) & RTF_UP) !== 0,
    )
    .map((f) => ({ iface: f[0], metric: Number(f[6]) }));
}

function ipv6DefaultRoutes(): Array<{ iface: string; metric: number }> {
  let text: string;
  try {
    text = fs.readFileSync('/proc/net/ipv6_route', 'utf8');
  } catch {
    return [];
  }
  return text
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 10 && /^0+$/.test(f[0]) && f[1] === '00' && f[9] !== 'lo')
    .map((f) => ({ iface: f[9], metric: parseInt(f[5], 16) }));
}

/**
 * The interface of the default route (lowest metric; IPv4 before IPv6), what bpfd calls the
 * primary node interface. Undefined when the node has no default route.
 */
export function primaryInterface(): string | undefined {
  for (const routes of [ipv4DefaultRoutes(), ipv6DefaultRoutes()]) {
    if (routes.length === 0) continue;
    routes.sort((a, b) => a.metric - b.metric || a.iface.localeCompare(b.iface));
    return routes[0].iface;
  }
  return undefined;
}

export interface LinkWatch {
  close(): void;
}

const LINK_LINE = /^(Deleted )?(\d+): ([^:@\s]+)/;

/** `index → name` of every interface, from `ip -o link show` lines. */
function linkTable(lines: string): Map<number, string> {
  const table = new Map<number, string>();
  for (const line of lines.split('\n')) {
    const match = LINK_LINE.exec(line);
    if (match && !match[1]) table.set(Number(match[2]), match[3]);
  }
  return table;
}

/**
 * Calls `onChange` when an interface of this network namespace appears, goes, or is renamed.
 * Event driven through `ip -o monitor link` (iproute2), so an idle node costs nothing. Other
 * link events (state changes, an XDP program attached, often by this daemon) are dropped.
 * `onError` reports that `ip` cannot run.
 */
export function watchLinks(onChange: () => void, onError: (err: Error) => void): LinkWatch {
  let known = new Map<number, string>();
  try {
    known = linkTable(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }));
  } catch {
    // the monitor below reports the failure
  }
  // `ip monitor` runs under a shell that stops it when our end of its stdin closes, so the
  // monitor ends with the daemon even when the daemon is killed. Both run in a session of their
  // own: a Ctrl-C at the daemon's terminal must reach the daemon only, which then closes that
  // stdin; sent to the shell, it would end the shell and leave the monitor behind (a
  // background job of a script ignores SIGINT).
  const monitor = spawn('sh', ['-c', 'ip -o monitor link & trap "kill $!" EXIT; read -r _'], {
    stdio: ['pipe', 'pipe', 'ignore'],
    detached: true,
  });
  let closed = false;
  let pending = '';
  monitor.stdout.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString('utf8')).split('\n');
    pending = lines.pop() ?? '';
    let changed = false;
    for (const line of lines) {
      const match = LINK_LINE.exec(line);
      if (!match) continue;
      const [, deleted, index, name] = match;
      if (deleted) changed = known.delete(Number(index)) || changed;
      else if (known.get(Number(index)) !== name) {
        known.set(Number(index), name);
        changed = true;
      }
    }
    if (changed) onChange();
  });
  monitor.on('error', (err) => onError(err));
  monitor.on('exit', (code, signal) => {
    if (!closed) onError(new Error(`ip monitor link exited (${code ?? signal})`));
  });
  return {
    close() {
      closed = true;
      monitor.stdin.end();
    },
  };
}
