// One stream for a long time (MINUTES, 30 by default; `make endurance`): the agent's x11
// instance showing openspace-x11-clock at 1280x720 30 fps to one Chromium viewer. Compares the
// first and the last WINDOW seconds: frames presented per second, the agent's encoded frames
// per second (its metric), glass-to-glass latency, and the agent's RSS, descriptors and threads.
// Exits 1 when the end is worse than the start beyond the noise bounds printed with the table.
//
//   cargo build -p openspace-agent --bins && cd e2e/browser && OPENSPACE_PROFILE=debug node bench/long-stream.mjs
import { Agent, binary, freeDisplays } from '../lib/agent.mjs';
import { launch, live, sleep } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';
import { footprint } from '../lib/procs.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';
const MINUTES = Number(process.env.MINUTES || 30);
const WINDOW = Number(process.env.WINDOW_SECONDS || 60);
const FPS = 30;

const agent = await Agent.start(['--capacity', '1', '--fps', String(FPS), '--instance-kind', 'x11',
  '--instance-command', binary('openspace-x11-clock'), '--x11-display-base', String(freeDisplays(1))]);
const browser = await launch();

async function encoded() {
  const text = await fetch(`http://${agent.httpAddr}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((l) => l.startsWith('openspace_agent_frames_total{outcome="encoded"}'));
  return line ? Number(line.split(' ').pop()) : NaN;
}

async function window_(page) {
  const frames0 = await encoded();
  const t0 = Date.now();
  const samples = await collectLatency(page, WINDOW * 1000);
  const seconds = (Date.now() - t0) / 1000;
  return {
    presentedFps: samples.length / seconds,
    encodedFps: (await encoded() - frames0) / seconds,
    p50: pct(samples, 0.5),
    p99: pct(samples, 0.99),
    ...footprint(agent.child.pid),
  };
}

let start;
let end;
try {
  agent.cmd('start', '--width', 1280, '--height', 720);
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.goto(agent.url(0));
  await live(page, 30);
  start = await window_(page);
  const until = Date.now() + (MINUTES * 60 - 2 * WINDOW) * 1000;
  while (Date.now() < until) {
    await sleep(Math.min(30000, Math.max(0, until - Date.now())));
    if (await page.evaluate(() => window.viewer.state) !== 'live') throw new Error('the viewer is no longer live');
  }
  end = await window_(page);
  await page.close();
} finally {
  await browser.close();
  await agent.stop();
}

const row = (what, w) => `| ${what} | ${w.presentedFps.toFixed(1)} | ${w.encodedFps.toFixed(1)} | ${w.p50} | ${w.p99} | ${(w.rssKiB / 1024).toFixed(1)} | ${w.fds} | ${w.threads} |`;
console.log(`| 1280x720 ${FPS} fps, ${MINUTES} min | fps presented | fps encoded | p50 ms | p99 ms | RSS MiB | fds | threads |`);
console.log('|---|---|---|---|---|---|---|---|');
console.log(row(`first ${WINDOW} s`, start));
console.log(row(`last ${WINDOW} s`, end));
const problems = [];
if (end.encodedFps < start.encodedFps - 1) problems.push('the agent encodes fewer frames per second');
if (end.presentedFps < start.presentedFps - 2) problems.push('fewer frames presented per second');
if (end.p50 > start.p50 + 10) problems.push('p50 latency grew by more than 10 ms');
if (end.rssKiB - start.rssKiB > 8 * 1024) problems.push('RSS grew by more than 8 MiB');
if (end.fds > start.fds) problems.push('more open descriptors');
console.log(`bounds: encoded fps -1, presented fps -2, p50 +10 ms, RSS +8 MiB, descriptors +0: ${problems.length ? problems.join('; ') : 'held'}`);
process.exit(problems.length ? 1 : 0);
