// Glass to glass through the TURN relay against direct, in one run on the hosts of net.sh, and
// coturn's CPU per stream; prints a table for BENCHMARKS.md.
//
//   e2e/turn/run.sh e2e/turn/bench.mjs        (make turn builds the binaries; needs root)
//
// One 720p30 stream of the built-in renderer per case: the page reads the stamp of every
// presented frame for SECONDS s (lib/latency.mjs); coturn's user + system CPU over the same
// window comes from /proc/PID/stat. Direct opens the firewalls for UDP between viewer and node.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { live } from '../browser/lib/browser.mjs';
import { collectLatency, pct } from '../browser/lib/latency.mjs';
import { unavailable, firewall, launchViewer, startAgent, Relay, RELAY, TURN_PORT } from './lib/hosts.mjs';

if (unavailable) throw new Error(unavailable);
const SECONDS = Number(process.env.SECONDS_PER_CASE || 15);
const dir = mkdtempSync(path.join(process.env.OPENSPACE_TURN_DIR || tmpdir(), 'openspace-turn-bench-'));
const secret = randomBytes(24).toString('base64url');
const secretFile = path.join(dir, 'turn-secret');
writeFileSync(secretFile, secret, { mode: 0o600 });
const turn = (...transports) => [...transports.flatMap((t) => ['--turn-url', `turn:${RELAY}:${TURN_PORT}?transport=${t}`]), '--turn-secret-file', secretFile];
const cases = [
  ['direct (UDP, no relay)', 'open', []],
  ['relay, TURN over UDP', 'ingress', turn('udp')],
  ['relay, TURN over TCP', 'tcp-only', turn('udp', 'tcp')],
];

const relay = await Relay.start(dir, secret);
const browser = await launchViewer(dir);
const rows = [];
try {
  for (const [name, rules, extra] of cases) {
    firewall(rules);
    const agent = await startAgent(['--capacity', '1', '--default-resolution', '1280x720', ...extra]);
    try {
      agent.cmd('start', '--width', 1280, '--height', 720);
      while (agent.cmd('status', 0).status !== 'RUNNING') await new Promise((r) => setTimeout(r, 100));
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      await page.goto(agent.url(0));
      await live(page, 30);
      await page.waitForTimeout(2000); // past the first keyframes and the encoder's ramp-up
      const cpu0 = relay.cpuSeconds();
      const t0 = Date.now();
      const samples = await collectLatency(page, SECONDS * 1000);
      const cpu = (relay.cpuSeconds() - cpu0) / ((Date.now() - t0) / 1000);
      const stats = await page.evaluate(() => window.viewer.stats);
      rows.push(`| ${name} | ${stats.route} | ${samples.length} | ${pct(samples, 0.5)} | ${pct(samples, 0.95)} | ${pct(samples, 0.99)} | ${stats.bitrateMbps?.toFixed(2)} | ${(cpu * 100).toFixed(1)} % |`);
      await page.close();
    } finally {
      await agent.stop();
    }
  }
} finally {
  await browser.close();
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`| path | route (viewer's pair) | frames | p50 ms | p95 ms | p99 ms | Mbit/s | coturn CPU (of one core) |`);
console.log('|---|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
