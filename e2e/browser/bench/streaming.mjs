// Streaming benchmarks in headless Chromium against the real agent over loopback; prints tables.
//
//   cd e2e/browser && node bench/streaming.mjs        (needs the release agent: cargo build --release)
//
// 1. Glass-to-glass latency: the renderer stamps each frame with its wall-clock time; the page
//    reads the stamp from every presented frame (requestVideoFrameCallback) and subtracts it from
//    its own clock (same machine, same clock).
// 2. Page load to first decoded frame.
// 3. Agent CPU per 720p30 stream, and how many streams run at once without dropped frames.
import { readFileSync } from 'node:fs';
import { Agent } from '../lib/agent.mjs';
import { launch, live, until } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';

const f1 = (x) => x.toFixed(1);

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
}

function metric(agent, name) {
  return fetch(`http://${agent.httpAddr}/metrics`).then((r) => r.text()).then((text) => {
    const line = text.split('\n').find((l) => l.startsWith(name));
    return line ? Number(line.split(' ').pop()) : 0;
  });
}

const browser = await launch();
console.log('| benchmark | result |');
console.log('|---|---|');

// 1 + 2: one 720p30 stream.
{
  const agent = await Agent.start(['--capacity', '1', '--default-resolution', '1280x720']);
  agent.cmd('start', '--width', 1280, '--height', 720);
  // Load times count from a running instance (the first renderer builds its textures first).
  for (let i = 0; agent.cmd('status', 0).status !== 'RUNNING'; i++) {
    if (i > 100) throw new Error('the instance never ran');
    await new Promise((r) => setTimeout(r, 100));
  }
  const loads = [];
  for (let i = 0; i < 10; i++) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const t0 = Date.now();
    await page.goto(agent.url(0));
    await until(page, () => window.viewer?.framesDecoded > 0, null, { what: 'a first frame' });
    loads.push(Date.now() - t0);
    await page.close();
  }
  console.log(`| page load -> first decoded frame, 720p, n=10 | p50 ${pct(loads, 0.5)} ms / max ${Math.max(...loads)} ms |`);
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.goto(agent.url(0));
  await live(page, 30);
  const samples = await collectLatency(page, 15000);
  const size = await page.evaluate(() => `${window.viewer.videoWidth}x${window.viewer.videoHeight}`);
  console.log(`| glass-to-glass latency (stamp -> presented frame), ${size} at 30 fps, n=${samples.length} frames | p50 ${pct(samples, 0.5)} ms / p99 ${pct(samples, 0.99)} ms |`);
  await page.close();
  await agent.stop();
}

// 3: N streams at once, one viewer each; agent CPU and dropped frames over 10 s.
for (const n of [1, 2, 3, 4]) {
  const agent = await Agent.start(['--capacity', String(n), '--default-resolution', '1280x720']);
  const pages = [];
  for (let i = 0; i < n; i++) {
    agent.cmd('start');
    const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
    // The page would ask for its window size; keep every stream at 720p.
    await page.goto(agent.url(i));
    pages.push(page);
  }
  for (const page of pages) await live(page, 30);
  for (let i = 0; i < n; i++) agent.cmd('resolution', i, 1280, 720);
  await new Promise((r) => setTimeout(r, 2000));
  const cpu0 = cpuSeconds(agent.child.pid);
  const dropped0 = await metric(agent, 'openspace_agent_frames_total{outcome="dropped"}');
  const frames0 = await Promise.all(pages.map((p) => p.evaluate(() => window.viewer.framesDecoded)));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 10000));
  const seconds = (Date.now() - t0) / 1000;
  const cpu = (cpuSeconds(agent.child.pid) - cpu0) / seconds;
  const dropped = (await metric(agent, 'openspace_agent_frames_total{outcome="dropped"}')) - dropped0;
  const frames1 = await Promise.all(pages.map((p) => p.evaluate(() => window.viewer.framesDecoded)));
  const fps = frames1.map((f, i) => (f - frames0[i]) / seconds);
  console.log(`| ${n} x 720p30 stream(s), 10 s | agent CPU ${f1(cpu * 100)}% (${f1((cpu * 100) / n)}% per stream), frames dropped by the agent ${dropped}, decoded fps per viewer ${fps.map(f1).join(' / ')} |`);
  for (const page of pages) await page.close();
  await agent.stop();
}

await browser.close();
