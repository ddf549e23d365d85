// Runs the real openspace-agent on loopback for browser tests, and talks to it with openspace-cmd.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** A cargo-built binary: CARGO_TARGET_DIR (or ./target), profile OPENSPACE_PROFILE (debug). */
export function binary(name) {
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(here, '..', '..', '..', 'target');
  return path.join(targetDir, process.env.OPENSPACE_PROFILE || 'debug', name);
}

/** A TCP port that is free right now on loopback. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether an X server holds display `:n` (its socket or lock file exists). */
export const displayInUse = (n) => existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`);

/** The first of `count` consecutive display numbers nobody uses, searching from a per-process start. */
export function freeDisplays(count) {
  for (let base = 700 + (process.pid % 100) * 4; ; base += count) {
    if (Array.from({ length: count }, (_, i) => base + i).every((n) => !displayInUse(n))) return base;
  }
}

export class Agent {
  /**
   * `host`: the address it listens and sends media on; `exec`: a command line the agent and
   * openspace-cmd run under (e2e/turn: `ip netns exec NS`, so both live on a test host).
   */
  static async start(extra = [], { host = '127.0.0.1', exec = [] } = {}) {
    const args = ['--command-listen', `${host}:0`, '--http-listen', `${host}:0`,
      '--signaling-listen', `${host}:0`, '--webrtc-address', host,
      '--api-host', '127.0.0.1', '--api-base-port', String(await freePort()), ...extra];
    const [program, ...prefix] = [...exec, binary('openspace-agent')];
    const child = spawn(program, [...prefix, ...args], {
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info,webrtc=warn,rtc=warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const agent = new Agent(child, exec);
    const lines = createInterface({ input: child.stderr });
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent did not start:\n${agent.logs.join('\n')}`)), 15000);
      lines.on('line', (line) => {
        agent.logs.push(line);
        const field = (k) => line.match(new RegExp(`${k}=(\\S+)`))?.[1];
        if (field('command_addr') && field('http_addr')) {
          agent.commandAddr = field('command_addr');
          agent.httpAddr = field('http_addr');
          agent.signalingAddr = field('signaling_addr');
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`agent exited with ${code}:\n${agent.logs.join('\n')}`)));
    });
    await ready;
    return agent;
  }

  constructor(child, exec = []) {
    this.child = child;
    this.exec = exec;
    this.logs = [];
  }

  /** Runs openspace-cmd with these arguments; returns the parsed JSON answer. */
  cmd(...args) {
    let out;
    try {
      const [program, ...prefix] = [...this.exec, binary('openspace-cmd')];
      out = execFileSync(program, [...prefix, '--url', `ws://${this.commandAddr}`, ...args.map(String)], { encoding: 'utf8' });
    } catch (e) {
      out = e.stdout; // exit code 1: an answer with an error
    }
    return JSON.parse(out.trim());
  }

  url(id, extra = '') {
    return `http://${this.httpAddr}/frontend/#/streaming?id=${id}${extra}`;
  }

  async stop() {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const [code] = await once(this.child, 'exit');
    return code;
  }
}
