// Click to first frame through the streaming frontend, and its parts, against the local cluster of
// the end-to-end flow (the chart, two agents, the operator and the frontend as their
// ServiceAccounts). Run through the control plane launcher:
//
//   cargo build --release -p openspace-agent -p openspace-operator -p openspace-frontend --bins
//   OPENSPACE_PROFILE=release e2e/flow/run.sh e2e/flow/bench-frontend.mjs
//
// With POOL=N the chart's OpenSpacePool keeps N built-in instances warm and the frontend's sessions
// claim them (`--pool`); each round then waits for the pool to be full again before the click.
//
// Per round: a fresh visitor clicks "Start a session"; we time the click -> POST /session answered
// (the session created), -> the page's view says Running (create -> Running, pushed from the
// watch), -> the first decoded frame in the stream (Running -> first frame: page load, signaling
// relay, WebRTC). Then "End session", and the next round starts once the session is gone.
import { launch } from '../browser/lib/browser.mjs';
import { pct } from '../browser/lib/latency.mjs';
import { NS, kubectl, eventually, bringUp, tearDown } from './lib/cluster.mjs';

const ROUNDS = Number(process.env.ROUNDS || 10);
const POOL = Number(process.env.POOL || 0);
const { frontendUrl } = await bringUp({ maxSessions: 1, pool: POOL });
const poolReady = () => Number(kubectl('-n', NS, 'get', 'ospool', 'openspace', '-o', 'jsonpath={.status.ready}') || 0);
const browser = await launch();
const parts = { created: [], running: [], frame: [], total: [] };
try {
  for (let round = 0; round < ROUNDS; round++) {
    if (POOL) await eventually('the pool full', () => poolReady() === POOL);
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    await page.goto(frontendUrl);
    await page.locator('#start').waitFor({ state: 'visible' });
    const answered = page.waitForResponse((r) => r.url().endsWith('/session') && r.request().method() === 'POST');
    const t0 = Date.now();
    await page.click('#start');
    await answered;
    const t1 = Date.now();
    await page.waitForFunction(() => window.page.view?.state === 'running', null, { timeout: 30000, polling: 5 });
    const t2 = Date.now();
    const frame = await (await page.$('#stream')).contentFrame();
    await frame.waitForFunction(() => window.viewer?.framesDecoded >= 1, null, { timeout: 20000, polling: 5 });
    const t3 = Date.now();
    parts.created.push(t1 - t0);
    parts.running.push(t2 - t1);
    parts.frame.push(t3 - t2);
    parts.total.push(t3 - t0);
    await page.click('#end');
    await eventually('the session gone', () => kubectl('-n', NS, 'get', 'oss', '-o', 'name') === '');
    await context.close();
  }
} finally {
  await browser.close();
  await tearDown(false);
}
const row = (name, xs) => console.log(`| ${name} | ${pct(xs, 0.5)} ms | ${Math.max(...xs)} ms |`);
console.log(`| frontend, ${ROUNDS} rounds, 1280x720${POOL ? `, pool of ${POOL}` : ''} | p50 | max |`);
console.log('|---|---|---|');
row('click -> session created (POST answered)', parts.created);
row('created -> Running on the page (watch -> operator -> agent -> watch -> SSE)', parts.running);
row('Running -> first decoded frame (viewer page, signaling relay, WebRTC)', parts.frame);
row('click -> first decoded frame', parts.total);
