// Process accounting for benchmarks, from /proc: CPU time of a process and of its descendants,
// resident memory, open file descriptors, threads and UDP sockets.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

const TICK = 100; // clock ticks per second (USER_HZ) on Linux

function stat(pid) {
  // The command name (field 2) may hold spaces: split after its closing parenthesis.
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
}

/** User + system CPU seconds of `pid` (0 once it is gone). */
export function cpuSeconds(pid) {
  try {
    const fields = stat(pid);
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return 0;
  }
}

/** The pids of every living descendant of `pid`. */
export function descendants(pid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(stat(name)[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch { /* gone meanwhile */ }
  }
  const out = [];
  const walk = (p) => { for (const c of children.get(p) || []) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}

/** CPU seconds of each pid in `pids`, summed. */
export const cpuOf = (pids) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

/** RSS (KiB), open descriptors, threads and UDP sockets of `pid`. */
export function footprint(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1]);
  const fds = readdirSync(`/proc/${pid}/fd`);
  const sockets = new Set();
  for (const fd of fds) {
    try {
      const m = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) sockets.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  let udp = 0;
  for (const table of ['udp', 'udp6']) {
    let text = '';
    try { text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode && sockets.has(inode)) udp++;
    }
  }
  return { rssKiB: field('VmRSS'), fds: fds.length, threads: field('Threads'), udp };
}
