// Glass-to-glass latency with and without the playout-delay header extension (0/0), in one run:
// the same agent binary, 1280x720, alternating cases so that the machine's load hits both alike.
//
//   cd e2e/browser && node bench/playout.mjs      (OPENSPACE_PROFILE=debug for the dev build)
import { Agent } from '../lib/agent.mjs';
import { launch, live } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';
const ROUNDS = 2;
const SECONDS = 10;

const browser = await launch();
const results = { zero: [], browser: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const mode of ['browser', 'zero']) {
    const agent = await Agent.start(['--capacity', '1', '--playout-delay', mode]);
    agent.cmd('start', '--width', 1280, '--height', 720);
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto(agent.url(0));
    await live(page, 30);
    results[mode].push(...await collectLatency(page, SECONDS * 1000));
    await page.close();
    await agent.stop();
  }
}
await browser.close();
console.log('| --playout-delay | frames | p50 ms | p95 ms | p99 ms |');
console.log('|---|---|---|---|---|');
for (const [mode, samples] of Object.entries(results)) {
  console.log(`| ${mode} | ${samples.length} | ${pct(samples, 0.5)} | ${pct(samples, 0.95)} | ${pct(samples, 0.99)} |`);
}
