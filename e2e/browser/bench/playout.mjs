// Glass-to-glass latency with and without the playout-delay header extension (0/0), in one run:
// the same agent binary, at 1280x720 30 fps, 1280x720 60 fps and 1920x1080 30 fps, alternating
// the two cases so that the machine's load hits both alike.
//
//   cd e2e/browser && node bench/playout.mjs      (OPENSPACE_PROFILE=debug for the dev build)
import { Agent } from '../lib/agent.mjs';
import { launch, live } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';
const ROUNDS = 2;
const SECONDS = 10;
const SHAPES = [[1280, 720, 30], [1280, 720, 60], [1920, 1080, 30]];

const browser = await launch();
console.log('| picture | --playout-delay | frames | p50 ms | p95 ms | p99 ms |');
console.log('|---|---|---|---|---|---|');
for (const [width, height, fps] of SHAPES) {
  const results = { zero: [], browser: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ['browser', 'zero']) {
      const agent = await Agent.start(['--capacity', '1', '--playout-delay', mode, '--fps', String(fps)]);
      agent.cmd('start', '--width', width, '--height', height);
      const page = await browser.newPage({ viewport: { width, height } });
      await page.goto(agent.url(0));
      await live(page, 30);
      results[mode].push(...await collectLatency(page, SECONDS * 1000));
      await page.close();
      await agent.stop();
    }
  }
  for (const [mode, samples] of Object.entries(results)) {
    console.log(`| ${width}x${height} ${fps} fps | ${mode} | ${samples.length} | ${pct(samples, 0.5)} | ${pct(samples, 0.95)} | ${pct(samples, 0.99)} |`);
  }
}
await browser.close();
