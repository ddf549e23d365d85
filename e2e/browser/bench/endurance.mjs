// Streams that run for days: one agent (x11 instances showing openspace-x11-clock) through
// VIEWER_CYCLES viewer cycles on one instance (page load, frames, close; every 10th page crashes
// instead, every 10th navigates away) and START_CYCLES START/STOP cycles on a second slot, then
// its RSS, open descriptors, threads, UDP sockets and X displays against the baseline taken after
// a warm-up. Exits 1 when any is above the bound: RSS_BOUND_MIB over the baseline, and
// SLOPE_BOUND_MIB over the second half of the viewer cycles (a leak keeps growing, the
// allocator's high-water mark does not); descriptors, threads, UDP sockets, displays: none.
//
//   cargo build -p openspace-agent --bins && cd e2e/browser && OPENSPACE_PROFILE=debug node bench/endurance.mjs
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Agent, binary, freeDisplays } from '../lib/agent.mjs';
import { launch, until, sleep } from '../lib/browser.mjs';
import { descendants, footprint } from '../lib/procs.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';
const VIEWER_CYCLES = Number(process.env.VIEWER_CYCLES || 1000);
const START_CYCLES = Number(process.env.START_CYCLES || 200);
const PARALLEL = Number(process.env.PARALLEL || 6);
const WARMUP_VIEWERS = 40;
const WARMUP_STARTS = 10;
const RSS_BOUND_MIB = Number(process.env.RSS_BOUND_MIB || 12);
const SLOPE_BOUND_MIB = Number(process.env.SLOPE_BOUND_MIB || 2);

const display = freeDisplays(2);
const agent = await Agent.start(['--capacity', '2', '--instance-kind', 'x11', '--instance-command',
  binary('openspace-x11-clock'), '--x11-display-base', String(display), '--default-resolution', '320x180']);
const browser = await launch();

async function metric(name) {
  const text = await fetch(`http://${agent.httpAddr}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}

async function waitFor(what, fn, timeoutMs = 30000) {
  for (const started = Date.now(); !(await fn());) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const status = (id) => agent.cmd('status', id).status;

/** The agent's own footprint plus the X displays of its subtree and on disk in its range. */
function snapshot() {
  const xvfb = descendants(agent.child.pid).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'Xvfb'; } catch { return false; }
  }).length;
  const sockets = readdirSync('/tmp/.X11-unix').filter((n) => n === `X${display}` || n === `X${display + 1}`).length;
  return { ...footprint(agent.child.pid), xvfb, xSockets: sockets };
}

/**
 * Waits for every viewer to be gone and the agent to settle, then takes a snapshot. Idle
 * threads of tokio's blocking pool leave after 10 s: with a baseline, up to 15 s for them.
 */
async function settled(base = null) {
  await waitFor('no viewers', async () => (await metric('openspace_agent_viewers')) === 0, 90000);
  await sleep(3000); // peer connections' last timers wind down
  for (let waited = 0; base && waited < 15000 && snapshot().threads > base.threads; waited += 500) await sleep(500);
  return snapshot();
}

/** One viewer: load, a few frames, then close (cleanly, by crashing, or by navigating away). */
async function viewerCycle(n) {
  const page = await browser.newPage({ viewport: { width: 320, height: 180 } });
  await page.goto(agent.url(0));
  await until(page, () => window.viewer?.state === 'live' && window.viewer.framesDecoded >= 3, null,
    { what: `frames in cycle ${n}`, timeout: 30000 });
  if (n % 10 === 3) {
    const cdp = await page.context().newCDPSession(page);
    const crashed = new Promise((resolve) => page.once('crash', resolve));
    cdp.send('Page.crash').catch(() => {}); // never answered: the page is gone
    await crashed;
  } else if (n % 10 === 7) {
    await page.goto('about:blank');
  }
  await page.close();
}

async function viewerCycles(count) {
  let next = 0;
  const t0 = Date.now();
  const lane = async () => {
    for (let n = next++; n < count; n = next++) {
      await viewerCycle(n);
      if (n % 100 === 99) console.error(`${n + 1} viewer cycles, agent RSS ${(footprint(agent.child.pid).rssKiB / 1024).toFixed(1)} MiB`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  return (Date.now() - t0) / 1000;
}

async function startStopCycles(count) {
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const started = agent.cmd('start', '--width', 320, '--height', 180);
    if (started.id === undefined) throw new Error(`START failed: ${JSON.stringify(started)}`);
    await waitFor(`instance ${started.id} running`, () => status(started.id) === 'RUNNING');
    agent.cmd('stop', started.id);
    await waitFor(`instance ${started.id} idle`, () => status(started.id) === 'IDLE');
  }
  return (Date.now() - t0) / 1000;
}

const rows = [];
let failed = false;
try {
  const first = agent.cmd('start', '--width', 320, '--height', 180);
  await waitFor('the viewers\' instance running', () => status(first.id) === 'RUNNING');
  await viewerCycles(WARMUP_VIEWERS);
  await startStopCycles(WARMUP_STARTS);
  const baseline = await settled();
  rows.push(['baseline (after warm-up)', baseline, null]);
  // In two halves: what the second half adds is the slope, which a leak keeps and the
  // allocator's high-water mark (reached in the first) does not.
  const half = Math.floor(VIEWER_CYCLES / 2);
  const firstSeconds = await viewerCycles(half);
  const middle = await settled(baseline);
  rows.push([`after ${half} viewer cycles (${firstSeconds.toFixed(0)} s)`, middle, baseline]);
  const secondSeconds = await viewerCycles(VIEWER_CYCLES - half);
  const after = await settled(baseline);
  rows.push([`after ${VIEWER_CYCLES} viewer cycles (${(firstSeconds + secondSeconds).toFixed(0)} s)`, after, baseline]);
  if (after.rssKiB - middle.rssKiB > SLOPE_BOUND_MIB * 1024) {
    failed = true;
    console.error(`RSS still grows: +${((after.rssKiB - middle.rssKiB) / 1024).toFixed(1)} MiB over the second ${VIEWER_CYCLES - half} viewer cycles`);
  }
  const startSeconds = await startStopCycles(START_CYCLES);
  rows.push([`after ${START_CYCLES} START/STOP cycles (${startSeconds.toFixed(0)} s)`, await settled(baseline), baseline]);
} finally {
  await browser.close();
  await agent.stop();
}

const delta = (now, base, key) => (base ? ` (${now[key] - base[key] >= 0 ? '+' : ''}${now[key] - base[key]})` : '');
console.log(`| agent | RSS MiB | fds | threads | UDP sockets | Xvfb | X sockets (:${display}, :${display + 1}) |`);
console.log('|---|---|---|---|---|---|---|');
for (const [what, now, base] of rows) {
  const rss = (now.rssKiB / 1024).toFixed(1) + (base ? ` (${now.rssKiB >= base.rssKiB ? '+' : ''}${((now.rssKiB - base.rssKiB) / 1024).toFixed(1)})` : '');
  console.log(`| ${what} | ${rss} | ${now.fds}${delta(now, base, 'fds')} | ${now.threads}${delta(now, base, 'threads')} | ${now.udp}${delta(now, base, 'udp')} | ${now.xvfb}${delta(now, base, 'xvfb')} | ${now.xSockets}${delta(now, base, 'xSockets')} |`);
  if (base) {
    for (const key of ['fds', 'threads', 'udp', 'xvfb', 'xSockets']) {
      if (now[key] > base[key]) { failed = true; console.error(`${what}: ${key} ${base[key]} -> ${now[key]}`); }
    }
    if (now.rssKiB - base.rssKiB > RSS_BOUND_MIB * 1024) { failed = true; console.error(`${what}: RSS above the ${RSS_BOUND_MIB} MiB bound`); }
  }
}
console.log(`bound: RSS +${RSS_BOUND_MIB} MiB and +${SLOPE_BOUND_MIB} MiB over the second half of the viewer cycles, descriptors/threads/UDP sockets/X displays back to the baseline: ${failed ? 'EXCEEDED' : 'held'}`);
if (existsSync(`/tmp/.X11-unix/X${display}`)) console.error(`display :${display} is still there after the agent stopped`);
process.exit(failed ? 1 : 0);
