// Encoder threads on this 2-core machine, each codec alone: glass-to-glass latency and the
// agent's CPU at 1280x720 30 fps (built-in renderer) with `--encoder-threads 1` and `2`, for
// VP8 (libvpx) and H.264 (openh264), once as is and once with one core kept busy by another
// process (a node with other work), cases alternating. Since this measurement libvpx encodes on
// one thread whatever the flag says (media/encoder/vp8.rs): its "2" rows now show that cap.
//
//   cargo build -p openspace-agent --bins && cd e2e/browser && OPENSPACE_PROFILE=debug node bench/threads.mjs
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent } from '../lib/agent.mjs';
import { launch, live, until } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';
import { cpuSeconds } from '../lib/procs.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';
const ROUNDS = Number(process.env.ROUNDS || 2);
const SECONDS = Number(process.env.SECONDS_PER_CASE || 10);
const CASES = [];
for (const load of [false, true]) {
  for (const codec of ['vp8', 'h264']) for (const threads of [1, 2]) CASES.push({ load, codec, threads });
}

const browser = await launch();
const results = CASES.map(() => ({ samples: [], cpu: 0, seconds: 0 }));
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, { load, codec, threads }] of CASES.entries()) {
      const hog = load ? spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }) : null;
      const agent = await Agent.start(['--capacity', '1', '--encoder-threads', String(threads)]);
      try {
        agent.cmd('start', '--width', 1280, '--height', 720);
        const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
        await page.goto(agent.url(0, `&codec=${codec}`));
        await live(page, 30);
        const used = await until(page, () => window.viewer.stats?.codec, null, { what: 'the codec in the stats' });
        if (!used.toLowerCase().includes(codec)) throw new Error(`streamed ${used}, not ${codec}`);
        const cpu0 = cpuSeconds(agent.child.pid);
        const t0 = Date.now();
        results[i].samples.push(...await collectLatency(page, SECONDS * 1000));
        results[i].seconds += (Date.now() - t0) / 1000;
        results[i].cpu += cpuSeconds(agent.child.pid) - cpu0;
        await page.close();
      } finally {
        await agent.stop();
        if (hog) { hog.kill('SIGKILL'); await once(hog, 'exit'); }
      }
    }
  }
} finally {
  await browser.close();
}
console.log('| other load | codec | --encoder-threads | frames | p50 ms | p95 ms | p99 ms | max ms | agent CPU |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const [i, { load, codec, threads }] of CASES.entries()) {
  const { samples: s, cpu, seconds } = results[i];
  console.log(`| ${load ? 'one core busy' : 'none'} | ${codec} | ${threads} | ${s.length} | ${pct(s, 0.5)} | ${pct(s, 0.95)} | ${pct(s, 0.99)} | ${Math.max(...s)} | ${(cpu / seconds * 100).toFixed(1)} % |`);
}
