// Stellarium (the OpenGL stand-in for OpenSpace) streamed from each X server the agent starts,
// 1280x720 at 30 fps, in one run (this machine is noisy: compare the rows):
// - glass to glass: openspace-x11-clock --strip draws its stamp in a small window above
//   Stellarium, which fills the rest of the screen and takes the CPU a real program takes; the
//   page reads the stamp from every presented frame (lib/latency.mjs). The clock alone on the same
//   server is the baseline.
// - input to picture: a drag step (the left button held, the pointer moved 120 px at once) in the
//   page, until the first presented frame whose picture (below the stamp) changed: the whole loop
//   a person steering feels, Stellarium's own render time included. (A key such as `g` would
//   measure Stellarium's fade animations instead.)
//
//   cargo build --release -p openspace-agent --bins && cd e2e/browser && node bench/stellarium.mjs
// (OPENSPACE_PROFILE=debug to use the debug build, which is optimized here too.)
import { Agent, binary, freeDisplays } from '../lib/agent.mjs';
import { launch, live, until, grab, mean } from '../lib/browser.mjs';
import { collectLatency, pct } from '../lib/latency.mjs';
import { stellarium } from '../lib/stellarium.mjs';

process.env.OPENSPACE_PROFILE ||= 'release';
const [width, height] = [1280, 720];
const STEPS = 20;

/** Times from a drag step to the first presented frame whose picture differs (ms). */
async function inputToPicture(page, steps) {
  const box = await page.locator('#remote-video').boundingBox();
  const [x, y] = [box.x + box.width / 2, box.y + box.height * 0.6];
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.waitForTimeout(500);
  const samples = [];
  for (let i = 0; i < steps; i++) {
    const pending = page.evaluate(() => new Promise((resolve) => {
      const video = document.getElementById('remote-video');
      const canvas = new OffscreenCanvas(64, 32);
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      const picture = () => {
        // Below the stamp strip (24 rows at the top).
        ctx.drawImage(video, 0, 32, video.videoWidth, video.videoHeight - 32, 0, 0, 64, 32);
        const { data } = ctx.getImageData(0, 0, 64, 32);
        const luma = [];
        for (let p = 0; p < data.length; p += 4) luma.push((data[p] + data[p + 1] + data[p + 2]) / 3);
        return luma;
      };
      const before = picture();
      let movedAt = null;
      window.addEventListener('pointermove', () => { movedAt ??= performance.now(); }, { capture: true });
      const deadline = performance.now() + 5000;
      const onFrame = (now) => {
        if (movedAt !== null) {
          const luma = picture();
          const changed = luma.reduce((n, l, k) => n + Math.abs(l - before[k]), 0) / luma.length;
          if (changed > 2) return resolve(now - movedAt);
        }
        if (performance.now() > deadline) return resolve(null);
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }));
    await page.waitForTimeout(100);
    await page.mouse.move(x + (i % 2 ? -60 : 60), y + (i % 2 ? -20 : 20), { steps: 1 });
    const ms = await pending;
    if (ms !== null) samples.push(ms);
    await page.waitForTimeout(600);
  }
  await page.mouse.up();
  return samples;
}

const browser = await launch();
const rows = [];
for (const server of ['xvfb', 'xorg']) {
  for (const scene of ['clock alone', 'clock over Stellarium']) {
    const program = stellarium();
    const clock = `${binary('openspace-x11-clock')} --strip`;
    const command = scene === 'clock alone' ? binary('openspace-x11-clock') : `sh -c '${clock} & exec ${program.command}'`;
    const agent = await Agent.start(['--capacity', '1', '--instance-kind', 'x11', '--instance-command', command,
      '--x11-display-base', String(freeDisplays(1)), '--x11-server', server, '--x11-driver', 'dummy', '--fps', '30']);
    try {
      agent.cmd('start', '--width', width, '--height', height);
      const page = await browser.newPage({ viewport: { width, height } });
      await page.goto(agent.url(0));
      await live(page, 30);
      await until(page, (w) => window.viewer.videoWidth === w, width, { what: `${width} wide` });
      if (scene !== 'clock alone') {
        for (const t0 = Date.now(); !program.skyReady();) {
          if (Date.now() - t0 > 120000) throw new Error('Stellarium did not start');
          await page.waitForTimeout(250);
        }
        await page.waitForTimeout(3000);
      }
      const samples = await collectLatency(page, 15000);
      const decoded = await page.evaluate(() => window.viewer.framesDecoded);
      let steer = '';
      if (scene !== 'clock alone') {
        const steps = await inputToPicture(page, STEPS);
        steer = `${pct(steps, 0.5)?.toFixed(0)} / ${pct(steps, 0.99)?.toFixed(0)} ms (${steps.length} of ${STEPS})`;
        const luma = mean(await grab(page));
        steer += `, mean luma ${luma.toFixed(0)}`;
      }
      rows.push(`| ${server} | ${scene} | ${pct(samples, 0.5)} ms | ${pct(samples, 0.99)} ms | ${samples.length} | ${steer || '-'} |`);
      console.error(`${server} ${scene}: done (${decoded} frames decoded)`);
      await page.close();
    } finally {
      await agent.stop();
      program.remove();
    }
  }
}
await browser.close();
console.log(`| X server | picture (${width}x${height} at 30 fps) | glass-to-glass p50 | p99 | n | drag to picture p50 / p99 |`);
console.log('|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
