// Glass-to-glass latency of x11 instances against the built-in renderer, in one run (this machine
// is noisy: compare the two). The x11 program is openspace-x11-clock, which draws the same stamp as
// the built-in renderer into a window on the agent's Xvfb; the page reads it from each presented
// frame and subtracts it from its own clock (same machine, same clock).
//
//   cargo build --release -p openspace-agent --bins && cd e2e/browser && node bench/x11.mjs
import { Agent, binary, freeDisplays } from '../lib/agent.mjs';
import { launch, live, until } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';

const browser = await launch();
console.log('| instance | size | glass-to-glass p50 | p99 | n |');
console.log('|---|---|---|---|---|');
for (const [width, height] of [[1280, 720], [1920, 1080]]) {
  for (const kind of ['builtin', 'x11']) {
    const extra = kind === 'x11'
      ? ['--instance-kind', 'x11', '--instance-command', binary('openspace-x11-clock'), '--x11-display-base', String(freeDisplays(1))]
      : [];
    const agent = await Agent.start(['--capacity', '1', ...extra]);
    agent.cmd('start', '--width', width, '--height', height);
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(agent.url(0));
    await live(page, 30);
    await until(page, (w) => window.viewer.videoWidth === w, width, { what: `${width} wide` });
    const samples = await collectLatency(page, 15000);
    console.log(`| ${kind} | ${width}x${height} at 30 fps | ${pct(samples, 0.5)} ms | ${pct(samples, 0.99)} ms | ${samples.length} |`);
    await page.close();
    await agent.stop();
  }
}
await browser.close();
