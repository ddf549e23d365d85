// x11 instances in headless Chromium: real programs (xterm, glxgears through Mesa) on the agent's
// Xvfb, captured, encoded and streamed; typing and a drag through the data channel change what
// the program draws; RESOLUTION resizes the X screen and the stream follows without reconnecting.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, displayInUse, freeDisplays } from '../lib/agent.mjs';
import { launch, until, live, grab, difference, mean, darkPixels, typeIntoTerminal } from '../lib/browser.mjs';

let browser;
const agents = [];

async function x11Agent(command) {
  const base = freeDisplays(1);
  const agent = await Agent.start(['--capacity', '1', '--instance-kind', 'x11', '--instance-command', command,
    '--x11-display-base', String(base)]);
  agent.display = base;
  agents.push(agent);
  return agent;
}

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
  for (const agent of agents) {
    assert.equal(await agent.stop(), 0, 'the agent exits cleanly');
    assert.ok(!displayInUse(agent.display), 'its X server is gone');
  }
});

test('xterm: frames decode, typing and a drag reach the program, RESOLUTION resizes live', async () => {
  // A plain `sh`: the user's interactive shell start-up (.bashrc) is no part of the test.
  const agent = await x11Agent('xterm -bg white -fg black -e sh');
  const started = agent.cmd('start', '--width', 960, '--height', 540);
  assert.equal(started.error, 'none');
  const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
  await page.goto(agent.url(started.id));
  await live(page, 5);
  await until(page, () => window.viewer.videoWidth === 960 && window.viewer.videoHeight === 540, null, { what: '960x540' });
  const callerId = await page.evaluate(() => window.viewer.callerId);

  // Typing: the command line and its output appear in the top rows (black text on white).
  const { before, typed } = await typeIntoTerminal(page, 'echo openspace x11', 4000);
  assert.ok(typed > before + 300, `typed text shows up (dark pixels ${before} -> ${typed})`);

  // A drag over the first lines selects them: xterm draws the selection in reverse video.
  const box = await page.locator('#remote-video').boundingBox();
  await page.mouse.move(box.x + 2, box.y + 4);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + i * 40, box.y + 20);
  await page.mouse.up();
  let selected = typed;
  for (let i = 0; i < 40 && selected < typed + 2000; i++) {
    await page.waitForTimeout(100);
    selected = await darkPixels(page, 60);
  }
  assert.ok(selected > typed + 2000, `the drag selects text (dark pixels ${typed} -> ${selected})`);

  const answer = agent.cmd('resolution', started.id, 640, 360);
  assert.equal(answer.error, 'none');
  await until(page, () => window.viewer.videoWidth === 640 && window.viewer.videoHeight === 360, null, { what: '640x360' });
  assert.equal(await page.evaluate(() => window.viewer.callerId), callerId, 'no reconnect');
  await page.close();
});

test('glxgears (OpenGL through Mesa) streams a moving picture', async () => {
  const agent = await x11Agent('glxgears');
  const started = agent.cmd('start', '--width', 640, '--height', 360);
  assert.equal(started.error, 'none');
  const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
  await page.goto(agent.url(started.id));
  await live(page, 10);
  const a = await grab(page);
  await page.waitForTimeout(500);
  const b = await grab(page);
  const lit = a.filter((l) => l > 40).length / a.length;
  assert.ok(lit > 0.05, `the gears are drawn: ${(lit * 100).toFixed(1)}% lit, mean luma ${mean(a).toFixed(1)}`);
  assert.ok(difference(a, b) > 0.5, `the gears turn: difference ${difference(a, b).toFixed(2)}`);
  await page.close();
});
