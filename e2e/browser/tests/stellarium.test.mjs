// Stellarium, a real OpenGL program (the stand-in for OpenSpace), as an x11 instance on each X
// server the agent can start: Xvfb, and Xorg with the dummy driver (the GPU path's server without
// a GPU; Mesa renders on the CPU in both). Its sky decodes in Chromium, a drag pans it and the
// picture follows, and RESOLUTION resizes it without a reconnect.
import { test, before, after } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { Agent, displayInUse, freeDisplays } from '../lib/agent.mjs';
import { launch, until, live, grab, difference, mean, variance } from '../lib/browser.mjs';
import { stellarium } from '../lib/stellarium.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Bright pixels (luma > 200) in a grab. */
const bright = (luma) => luma.filter((l) => l > 200).length / luma.length;
/** A night sky over a landscape: mostly dark (the splash and an unpainted window are mostly
 * bright), yet with structure (horizon, stars, labels, the status bar): not a blank window. */
const isSky = (luma) => bright(luma) < 0.05 && mean(luma) < 100 && variance(luma) >= 100;
const describe = (luma) => `luma mean ${mean(luma).toFixed(1)}, variance ${variance(luma).toFixed(1)}, ${(bright(luma) * 100).toFixed(1)}% bright`;

/** Stellarium loads its catalogues on the CPU before it draws: up to a minute on a busy 2-core machine. */
const SKY_TIMEOUT = 90000;

/** Stellarium runs only where it can be shut in a network namespace of its own (lib/stellarium.mjs). */
const skip = spawnSync('unshare', ['-rn', 'true']).status === 0 ? false
  : 'unshare -rn cannot make a network namespace here, and Stellarium must not reach the network';

for (const server of ['xvfb', 'xorg']) {
  test(`Stellarium on ${server}: the sky decodes, a drag pans it, RESOLUTION resizes it live`, { skip }, async () => {
    const program = stellarium();
    const base = freeDisplays(1);
    const agent = await Agent.start(['--capacity', '1', '--instance-kind', 'x11', '--instance-command', program.command,
      '--x11-display-base', String(base), '--x11-server', server, '--x11-driver', 'dummy', '--stop-grace', '3s']);
    try {
      const started = agent.cmd('start', '--width', 960, '--height', 540);
      assert.equal(started.error, 'none');
      const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
      await page.goto(agent.url(started.id));
      await live(page, 5);
      const callerId = await page.evaluate(() => window.viewer.callerId);

      // The sky: first a splash screen while Stellarium loads its catalogues and compiles its
      // shaders (on the CPU here), then (its startup script says when) a picture with structure.
      for (const t0 = Date.now(); !program.skyReady();) {
        assert.ok(Date.now() - t0 < SKY_TIMEOUT, `Stellarium did not finish starting:\n${agent.logs.slice(-20).join('\n')}`);
        await page.waitForTimeout(250);
      }
      // The splash (and the main window's light grey before its first paint) can still show for a
      // moment: the sky at dusk is dark with a few bright stars and labels.
      let sky = await grab(page);
      for (const t0 = Date.now(); !isSky(sky) && Date.now() - t0 < 20000;) {
        await page.waitForTimeout(250);
        sky = await grab(page);
      }
      assert.ok(isSky(sky), `Stellarium draws a sky (${describe(sky)})`);

      // Still when nobody touches it; a drag (pan) moves the whole view.
      await page.waitForTimeout(1000);
      const a = await grab(page);
      await page.waitForTimeout(600);
      const b = await grab(page);
      const idle = difference(a, b);
      const box = await page.locator('#remote-video').boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
      for (let i = 1; i <= 12; i++) await page.mouse.move(box.x + box.width / 2 + i * 15, box.y + box.height / 2 + i * 12);
      await page.mouse.up();
      let dragged = 0;
      for (let i = 0; i < 30 && dragged < idle * 3 + 2; i++) {
        await page.waitForTimeout(200);
        dragged = difference(b, await grab(page));
      }
      assert.ok(dragged >= idle * 3 + 2, `the drag pans the sky: difference ${dragged.toFixed(2)} against ${idle.toFixed(2)} when still`);

      const answer = agent.cmd('resolution', started.id, 640, 360);
      assert.equal(answer.error, 'none');
      await until(page, () => window.viewer.videoWidth === 640 && window.viewer.videoHeight === 360, null,
        { what: '640x360', timeout: 30000 });
      assert.equal(await page.evaluate(() => window.viewer.callerId), callerId, 'no reconnect');
      // The window follows the screen (kiosk) and Stellarium redraws at the new size.
      let resized = await grab(page);
      for (let i = 0; i < 40 && !isSky(resized); i++) {
        await page.waitForTimeout(250);
        resized = await grab(page);
      }
      assert.ok(isSky(resized), `the sky at 640x360 (${describe(resized)})\n${agent.logs.filter((l) => /WARN|ERROR|resiz/.test(l)).join('\n')}`);
      await page.close();
    } finally {
      assert.equal(await agent.stop(), 0, 'the agent exits cleanly');
      assert.ok(!displayInUse(base), 'its X server is gone');
      program.remove();
    }
  });
}
