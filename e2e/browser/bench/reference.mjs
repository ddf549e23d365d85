// The agent's x11 instance against the seed's stack (agent/examples/reference_sender.rs:
// ximagesrc -> x264enc zerolatency/ultrafast -> rtph264pay -> webrtcbin), side by side in one
// run: the same display program (openspace-x11-clock on an Xvfb of the picture's size), the same
// bitrate and frame rate, the same headless Chromium, cases alternating. Prints glass-to-glass
// latency (stamp drawn -> frame presented) and CPU per stream: the sender process, and the X
// server plus the clock, each as a share of one core over the measured seconds.
//
//   cargo build -p openspace-agent --bins
//   cargo build -p openspace-agent --example reference_sender --features reference-sender
//   cd e2e/browser && OPENSPACE_PROFILE=debug node bench/reference.mjs     (root: own netns)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { Agent, binary, freeDisplays } from '../lib/agent.mjs';
import { launch, live, until, sleep } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';
import { ADDRESS, inOwnNetns } from '../lib/netns.mjs';
import { cpuOf, descendants } from '../lib/procs.mjs';

inOwnNetns();
process.env.OPENSPACE_PROFILE ||= 'release';
const ROUNDS = Number(process.env.ROUNDS || 2);
const SECONDS = Number(process.env.SECONDS_PER_CASE || 10);
const KBPS = 3000;
const SHAPES = process.env.SHAPES
  ? process.env.SHAPES.split(',').map((s) => s.split('x').map(Number))
  : [[1280, 720, 30], [1280, 720, 60], [1920, 1080, 30]];
const reference = path.join(path.dirname(binary('x')), 'examples', 'reference_sender');
if (!existsSync(reference)) throw new Error(`${reference} is missing: cargo build --example reference_sender --features reference-sender`);

const kill = async (child) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
};

/** Latency and CPU over SECONDS of a page that is already live; `sender`, `x`: pids to account. */
async function measure(page, sender, x) {
  const cpu0 = [cpuOf([sender]), cpuOf(x())];
  const t0 = Date.now();
  const samples = await collectLatency(page, SECONDS * 1000);
  const seconds = (Date.now() - t0) / 1000;
  return { samples, seconds, sender: (cpuOf([sender]) - cpu0[0]) / seconds, x: (cpuOf(x()) - cpu0[1]) / seconds };
}

async function agentCase(browser, [width, height, fps]) {
  const display = freeDisplays(1);
  const agent = await Agent.start(['--capacity', '1', '--fps', String(fps), '--bitrate-kbps', String(KBPS),
    '--instance-kind', 'x11', '--instance-command', binary('openspace-x11-clock'), '--x11-display-base', String(display)]);
  try {
    agent.cmd('start', '--width', width, '--height', height);
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(agent.url(0));
    await live(page, 30);
    await until(page, (w) => window.viewer.videoWidth === w, width, { what: `${width} wide` });
    const result = await measure(page, agent.child.pid, () => descendants(agent.child.pid));
    await page.close();
    return result;
  } finally {
    await agent.stop();
  }
}

const PAGE = `<!doctype html><body style="margin:0;background:#000">
<video id="remote-video" autoplay muted playsinline style="width:100vw;height:100vh"></video></body>`;

async function referenceCase(browser, [width, height, fps]) {
  const display = freeDisplays(1);
  const children = [];
  try {
    const xvfb = spawn('Xvfb', [`:${display}`, '-screen', '0', `${width}x${height}x24`, '-nolisten', 'tcp'], { stdio: 'ignore' });
    children.push(xvfb);
    for (let i = 0; !existsSync(`/tmp/.X11-unix/X${display}`); i++) {
      if (i > 100 || xvfb.exitCode !== null) throw new Error('Xvfb did not start');
      await sleep(50);
    }
    const env = { ...process.env, DISPLAY: `:${display}` };
    children.push(spawn(binary('openspace-x11-clock'), [], { env, stdio: 'ignore' }));
    const sender = spawn(reference, [`:${display}`, width, height, fps, KBPS, ADDRESS].map(String), { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(sender);
    const lines = createInterface({ input: sender.stdout });
    const [line] = await Promise.race([once(lines, 'line'), once(sender, 'exit').then(() => { throw new Error('reference_sender exited'); })]);
    const offer = JSON.parse(line);

    const page = await browser.newPage({ viewport: { width, height } });
    await page.setContent(PAGE);
    const answer = await page.evaluate(async (sdp) => {
      const video = document.getElementById('remote-video');
      const pc = new RTCPeerConnection();
      window.pc = pc;
      pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); };
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
      });
      // What lib/browser.mjs's live() and until() read from the viewer page.
      window.viewer = {
        get state() { return pc.connectionState === 'connected' && video.readyState >= 2 ? 'live' : pc.connectionState; },
        get framesDecoded() { return video.getVideoPlaybackQuality().totalVideoFrames; },
        get videoWidth() { return video.videoWidth; },
        errors: [],
      };
      return pc.localDescription.sdp;
    }, offer.sdp);
    sender.stdin.write(`${JSON.stringify({ type: 'answer', sdp: answer })}\n`);
    await live(page, 30);
    await until(page, (w) => window.viewer.videoWidth === w, width, { what: `${width} wide` });
    const result = await measure(page, sender.pid, () => [xvfb.pid, children[1].pid]);
    await page.close();
    sender.stdin.end();
    return result;
  } finally {
    for (const child of children.reverse()) await kill(child);
  }
}

const browser = await launch();
const pc1 = (x) => `${(x * 100).toFixed(1)} %`;
console.log('| picture | sender | frames | fps presented | p50 ms | p95 ms | p99 ms | sender CPU | Xvfb + clock CPU |');
console.log('|---|---|---|---|---|---|---|---|---|');
const summary = [];
try {
  for (const shape of SHAPES) {
    const runs = { reference: [], agent: [] };
    for (let round = 0; round < ROUNDS; round++) {
      runs.reference.push(await referenceCase(browser, shape));
      runs.agent.push(await agentCase(browser, shape));
    }
    const p50 = {};
    const cpu = {};
    for (const [name, results] of Object.entries(runs)) {
      const samples = results.flatMap((r) => r.samples);
      const seconds = results.reduce((s, r) => s + r.seconds, 0);
      const mean = (k) => results.reduce((s, r) => s + r[k] * r.seconds, 0) / seconds;
      p50[name] = pct(samples, 0.5);
      cpu[name] = mean('sender');
      console.log(`| ${shape[0]}x${shape[1]} ${shape[2]} fps | ${name} | ${samples.length} | ${(samples.length / seconds).toFixed(1)} | ${pct(samples, 0.5)} | ${pct(samples, 0.95)} | ${pct(samples, 0.99)} | ${pc1(cpu[name])} | ${pc1(mean('x'))} |`);
    }
    summary.push(`${shape[0]}x${shape[1]} ${shape[2]} fps: agent p50 ${((p50.agent / p50.reference - 1) * 100).toFixed(0)} % against the reference, sender CPU x${(cpu.agent / cpu.reference).toFixed(2)}`);
  }
} finally {
  await browser.close();
}
console.log('');
for (const line of summary) console.log(line);
