// The hosts of e2e/turn/net.sh as the tests use them: Chromium on the viewer, the agent on the
// node, coturn on the relay, and the viewer's firewall. run.sh creates the namespaces and names
// their prefix in OPENSPACE_TURN_NET; every process started here is a child of the test, and
// run.sh's teardown ends whatever is left in the namespaces.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../../browser/lib/agent.mjs';
import { launch } from '../../browser/lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const prefix = process.env.OPENSPACE_TURN_NET;

export const NODE = '198.18.210.20';
export const RELAY = '198.18.210.30';
export const TURN_PORT = 3478;
export const REALM = 'openspace.test';

/** Why these tests cannot run (no namespaces made by run.sh), or null. */
export const unavailable = prefix ? null : 'OPENSPACE_TURN_NET is not set: run e2e/turn/run.sh (make turn)';

const netns = (host) => ['ip', 'netns', 'exec', `${prefix}-${host}`];

/** Replaces the viewer's firewall (net.sh): `ingress` (TURN over UDP and TCP), `tcp-only`, or
 * `no-relay` (the relay unreachable: only TCP to the node). */
export function firewall(rules) {
  execFileSync(path.join(here, '..', 'net.sh'), ['firewall', prefix, rules], { stdio: 'inherit' });
}

/**
 * Runs `fn` with `host`'s default route removed (a pod network that leads only to the relay),
 * and puts it back whatever happens. With no route for multicast, joining mDNS's group fails.
 */
export async function withoutDefaultRoute(host, fn) {
  const ns = `${prefix}-${host}`;
  execFileSync('ip', ['-n', ns, 'route', 'del', 'default']);
  try {
    return await fn();
  } finally {
    execFileSync('ip', ['-n', ns, 'route', 'add', 'default', 'dev', 'eth0']);
  }
}

/**
 * Headless Chromium on the viewer host. playwright starts the executable it is given and talks
 * to it over a pipe (file descriptors cross namespaces), so a wrapper that enters the
 * namespace is all it takes.
 */
export function launchViewer(dir) {
  const wrapper = path.join(dir, 'chromium-in-viewer');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${netns('viewer').join(' ')} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  return launch({ executablePath: wrapper });
}

/** The real agent on the node host, listening and sending media on the node's address. */
export const startAgent = (extra = []) => Agent.start(extra, { host: NODE, exec: netns('node') });

/**
 * coturn on the relay host with the TURN REST scheme (`use-auth-secret`). The secret reaches it
 * in a config file of its own (its only one: not /etc/turnserver.conf), not on its command
 * line where every process could read it; it logs to stdout, line-buffered (stdbuf) so the
 * test sees each refusal as it happens.
 */
export class Relay {
  static async start(dir, secret) {
    const conf = path.join(dir, 'turnserver.conf');
    writeFileSync(conf, `static-auth-secret=${secret}\n`, { mode: 0o600 });
    const args = ['stdbuf', '-oL', 'turnserver', '-c', conf, '--use-auth-secret', '--realm', REALM,
      '--listening-ip', RELAY, '--relay-ip', RELAY, '--listening-port', String(TURN_PORT),
      '--min-port', '49152', '--max-port', '49200', '--no-tls', '--no-dtls', '--no-cli',
      '--log-file', 'stdout', '--pidfile', path.join(dir, 'turnserver.pid'),
      '--userdb', path.join(dir, 'turndb')];
    const [program, ...rest] = [...netns('relay'), ...args];
    const child = spawn(program, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = new Relay(child);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`coturn did not start:\n${relay.logs.join('\n')}`)), 10000);
      child.on('exit', (code) => reject(new Error(`coturn exited with ${code}:\n${relay.logs.join('\n')}`)));
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on('line', (line) => {
          relay.logs.push(line);
          if (/Total General servers/.test(line)) { clearTimeout(timer); resolve(); }
        });
      }
    });
    return relay;
  }

  constructor(child) {
    this.child = child;
    this.logs = [];
  }

  /** CPU seconds (user + system) turnserver has used so far, from /proc/PID/stat. */
  cpuSeconds() {
    // `ip netns exec` and stdbuf exec, so the child's pid is turnserver's own.
    const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
    return ticks / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }
}
