// The viewer's `jitterBufferTarget` on its receiver, alone: the same agent and page at 1280x720
// 30 fps with the target unset (the browser's own) and set to 0 ms, once with the agent's
// playout-delay extension (`--playout-delay zero`, the default) and once without (`browser`),
// cases alternating so that the machine's load hits all alike.
//
//   cargo build -p openspace-agent --bins && cd e2e/browser && OPENSPACE_PROFILE=debug node bench/jitter.mjs
import { Agent } from '../lib/agent.mjs';
import { launch, live } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';
const ROUNDS = Number(process.env.ROUNDS || 2);
const SECONDS = Number(process.env.SECONDS_PER_CASE || 10);
const CASES = [];
for (const playout of ['zero', 'browser']) for (const target of ['browser', '0']) CASES.push({ playout, target });

const browser = await launch();
const results = CASES.map(() => []);
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, { playout, target }] of CASES.entries()) {
      const agent = await Agent.start(['--capacity', '1', '--playout-delay', playout]);
      try {
        agent.cmd('start', '--width', 1280, '--height', 720);
        const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
        await page.goto(agent.url(0, `&jitterBufferTarget=${target}`));
        await live(page, 30);
        const applied = await page.evaluate(() => window.viewer.jitterBufferTarget);
        if (target !== 'browser' && applied !== Number(target)) throw new Error(`jitterBufferTarget is ${applied}, not ${target}`);
        results[i].push(...await collectLatency(page, SECONDS * 1000));
        await page.close();
      } finally {
        await agent.stop();
      }
    }
  }
} finally {
  await browser.close();
}
console.log('| --playout-delay | jitterBufferTarget | frames | p50 ms | p95 ms | p99 ms |');
console.log('|---|---|---|---|---|---|');
for (const [i, { playout, target }] of CASES.entries()) {
  const s = results[i];
  console.log(`| ${playout} | ${target === 'browser' ? 'unset (browser)' : `${target} ms`} | ${s.length} | ${pct(s, 0.5)} | ${pct(s, 0.95)} | ${pct(s, 0.99)} |`);
}
