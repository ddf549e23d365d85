// x11 instances in headless Chromium: real programs (xterm, glxgears through Mesa) on the agent's
// Xvfb, captured, encoded and streamed; typing and a drag through the data channel change what
// the program draws; RESOLUTION resizes the X screen and the stream follows without reconnecting;
// keys and buttons a vanished viewer held are released.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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

test('a viewer that vanishes holding Ctrl and a button leaves nothing pressed: the next one types "a", not Ctrl-A', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'osk-held-'));
  try {
    const typed = path.join(dir, 'typed');
    // The program writes the first line it reads, byte for byte (Ctrl-A would be \x01).
    const agent = await x11Agent(`xterm -e sh -c 'IFS= read -r line; printf %s "$line" > ${typed}; exec sleep 600'`);
    const started = agent.cmd('start', '--width', 640, '--height', 360);
    assert.equal(started.error, 'none');
    const key = (action, code, key, ctrl = false) =>
      ({ type: 'key', action, code, key, ctrl, shift: false, alt: false, meta: false, repeat: false });

    const first = await browser.newPage({ viewport: { width: 640, height: 360 } });
    await first.goto(agent.url(started.id));
    await live(first, 3);
    await until(first, () => window.viewer.controller === true, null, { what: 'control' });
    await first.evaluate((ctrl) => {
      window.viewer.send({ type: 'pointer', action: 'down', x: 0.5, y: 0.5, dx: 0, dy: 0, button: 0, buttons: 1 });
      window.viewer.send(ctrl);
    }, key('down', 'ControlLeft', 'Control', true));
    await first.waitForTimeout(300);
    // Gone without a key-up or a button-up: the renderer crashes, no page handler runs.
    const cdp = await first.context().newCDPSession(first);
    const crashed = first.waitForEvent('crash');
    cdp.send('Page.crash').catch(() => {}); // never answered: the page is gone
    await crashed;
    await first.close();

    const second = await browser.newPage({ viewport: { width: 640, height: 360 } });
    await second.goto(agent.url(started.id));
    await live(second, 3);
    await until(second, () => window.viewer.controller === true, null, { what: 'control for the second viewer' });
    await second.evaluate((keys) => { for (const k of keys) window.viewer.send(k); },
      [key('down', 'KeyA', 'a'), key('up', 'KeyA', 'a'), key('down', 'Enter', 'Enter'), key('up', 'Enter', 'Enter')]);
    let line = null;
    for (let i = 0; i < 50 && line === null; i++) {
      await second.waitForTimeout(100);
      if (existsSync(typed)) line = readFileSync(typed, 'latin1');
    }
    assert.equal(JSON.stringify(line), JSON.stringify('a'), 'the program read "a"');
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
