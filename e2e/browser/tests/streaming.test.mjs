// The viewer page in headless Chromium against the real agent (built-in renderer): frames decode,
// the picture lives, input steers it, RESOLUTION resizes it live, several viewers, reloads, tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../lib/agent.mjs';
import { launch, until, live, grab, variance, difference } from '../lib/browser.mjs';

let agent;
let browser;
let page;

before(async () => {
  agent = await Agent.start(['--capacity', '2']);
  browser = await launch();
  const started = agent.cmd('start');
  assert.equal(started.error, 'none');
  assert.equal(started.id, 0);
  page = await browser.newPage({ viewport: { width: 960, height: 540 } });
  await page.goto(agent.url(0));
});

after(async () => {
  await browser?.close();
  if (agent) assert.equal(await agent.stop(), 0, 'the agent exits cleanly');
});

test('frames decode and the picture is neither blank nor frozen', async () => {
  await live(page, 15);
  const first = await grab(page);
  const stampBefore = await page.evaluate(() => window.viewer.lastStamp.frame);
  await page.waitForTimeout(700);
  const second = await grab(page);
  // The planet fills about half the frame height against a dark sky.
  const lit = first.filter((l) => l > 40).length / first.length;
  assert.ok(lit > 0.04, `too little of the picture is lit: ${(lit * 100).toFixed(1)}%`);
  assert.ok(variance(first) > 100, `picture is flat: variance ${variance(first)}`);
  assert.ok(difference(first, second) > 0.05, 'the picture changes over time');
  const stampAfter = await page.evaluate(() => window.viewer.lastStamp.frame);
  assert.ok(stampAfter > stampBefore + 5, `stamped frame numbers advance (${stampBefore} -> ${stampAfter})`);
  const latency = await page.evaluate(() => window.viewer.latencyMs);
  assert.ok(latency > 0 && latency < 1000, `latency from the stamp is plausible: ${latency}`);
});

test('a drag on the data channel moves the camera', async () => {
  await live(page);
  // How much the picture changes on its own (the planet turns) in the time a drag takes.
  const a = await grab(page);
  await page.waitForTimeout(400);
  const b = await grab(page);
  const idle = difference(a, b);
  await page.evaluate(() => {
    window.viewer.send({ type: 'pointer', action: 'down', x: 0.5, y: 0.5, button: 0, buttons: 1 });
    for (let i = 0; i < 10; i++) {
      window.viewer.send({ type: 'pointer', action: 'move', x: 0.5, y: 0.5, dx: 40, dy: 8, buttons: 1 });
    }
    window.viewer.send({ type: 'pointer', action: 'up', x: 0.5, y: 0.5, button: 0, buttons: 0 });
  });
  await page.waitForTimeout(400);
  const c = await grab(page);
  const dragged = difference(b, c);
  assert.ok(dragged > 3 * idle + 1, `a drag changes the picture far more than time does (drag ${dragged}, idle ${idle})`);
});

test('the OpenSpace API path steers the same camera', async () => {
  await live(page);
  const a = await grab(page);
  await page.waitForTimeout(500);
  const b = await grab(page);
  const idle = difference(a, b);
  // As the Web GUI does: flightcontroller connect, then a velocity, then all zeros on release.
  await page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/api/0`);
    ws.onerror = reject;
    ws.onmessage = (e) => {
      const reply = JSON.parse(e.data);
      if (reply.payload?.type !== 'connect') return;
      ws.send(JSON.stringify({ topic: 1, payload: { type: 'inputState', inputState: { values: { orbitX: 0.4, orbitY: 0.1 } } } }));
      setTimeout(() => {
        ws.send(JSON.stringify({ topic: 1, payload: { type: 'inputState', inputState: { values: {} } } }));
        ws.close();
        resolve();
      }, 500);
    };
    ws.onopen = () => ws.send(JSON.stringify({ topic: 1, type: 'flightcontroller', payload: { type: 'connect' } }));
  }));
  await page.waitForTimeout(200);
  const c = await grab(page);
  const steered = difference(b, c);
  assert.ok(steered > 3 * idle + 1, `the API velocity turns the camera (steered ${steered}, idle ${idle})`);
});

test('RESOLUTION changes the decoded size on the same connection', async () => {
  await live(page);
  const callerId = await page.evaluate(() => window.viewer.callerId);
  const answer = agent.cmd('resolution', 0, 640, 360);
  assert.equal(answer.error, 'none');
  await until(page, () => window.viewer.videoWidth === 640 && window.viewer.videoHeight === 360, null, { what: '640x360' });
  assert.equal(await page.evaluate(() => window.viewer.callerId), callerId, 'no reconnect');
  assert.equal(await page.evaluate(() => window.viewer.state), 'live');
  const status = agent.cmd('status', 0);
  assert.deepEqual([status.width, status.height], [640, 360]);
});

test('the page asks for a resolution that fits its window', async () => {
  await page.setViewportSize({ width: 800, height: 600 });
  await until(page, () => window.viewer.videoWidth === 800 && window.viewer.videoHeight === 600, null, { what: '800x600' });
  const status = agent.cmd('status', 0);
  assert.deepEqual([status.width, status.height], [800, 600], 'the slot reports the new size');
});

test('two viewers watch at once and only the first controls', async () => {
  const second = await browser.newPage({ viewport: { width: 640, height: 360 } });
  await second.goto(agent.url(0));
  await live(second);
  const roles = [await page.evaluate(() => window.viewer.controller), await second.evaluate(() => window.viewer.controller)];
  assert.deepEqual(roles, [true, false]);
  assert.equal(agent.cmd('status', 0).viewers, 2, 'STATUS counts both viewers');
  const before = await page.evaluate(() => window.viewer.framesDecoded);
  await page.waitForTimeout(500);
  assert.ok((await page.evaluate(() => window.viewer.framesDecoded)) > before, 'the first viewer keeps decoding');
  await second.close();
  for (let i = 0; agent.cmd('status', 0).viewers !== 1; i++) {
    assert.ok(i < 100, 'the closed viewer leaves the count');
    await new Promise((r) => setTimeout(r, 100));
  }
});

test('the codec follows the browser: a VP8 wish, and an answer that picks VP8 over the agent\'s H.264', async () => {
  const codecOf = (p) => until(p, () => window.viewer?.stats?.codec && window.viewer.framesDecoded > 5 && window.viewer.stats.codec, null, { what: 'a codec' });
  const wish = await browser.newPage({ viewport: { width: 640, height: 360 } });
  await wish.goto(agent.url(0, '&codec=vp8'));
  await live(wish);
  assert.equal(await codecOf(wish), 'VP8');
  await wish.close();

  // The page names no codec, so the agent offers H.264 first; this browser answers with VP8
  // only (setCodecPreferences, as a browser without H.264 would), and VP8 is what it gets.
  const picky = await browser.newPage({ viewport: { width: 640, height: 360 } });
  await picky.addInitScript(() => {
    const apply = RTCPeerConnection.prototype.setRemoteDescription;
    RTCPeerConnection.prototype.setRemoteDescription = async function (description) {
      await apply.call(this, description);
      const vp8 = RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => /vp8/i.test(c.mimeType));
      for (const t of this.getTransceivers()) if (t.receiver.track.kind === 'video') t.setCodecPreferences(vp8);
    };
  });
  await picky.goto(agent.url(0));
  await live(picky);
  assert.equal(await codecOf(picky), 'VP8');
  await picky.close();
});

test('a reload rejoins', async () => {
  const callerId = await page.evaluate(() => window.viewer.callerId);
  await page.reload();
  await live(page);
  assert.notEqual(await page.evaluate(() => window.viewer.callerId), callerId);
});

test('viewers of an agent with a token file must present the instance token', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'openspace-token-'));
  const secured = await Agent.start(['--capacity', '1', '--token-file', (writeFileSync(path.join(dir, 't'), 'command-secret'), path.join(dir, 't'))]);
  try {
    // openspace-cmd needs the command token too.
    const started = JSON.parse(
      (await import('node:child_process')).execFileSync(
        (await import('../lib/agent.mjs')).binary('openspace-cmd'),
        ['--url', `ws://${secured.commandAddr}`, '--token-file', path.join(dir, 't'), 'start'],
        { encoding: 'utf8' },
      ),
    );
    assert.match(started.token, /^[0-9a-f]{32}$/);
    const denied = await browser.newPage();
    await denied.goto(secured.url(0));
    await until(denied, () => window.viewer?.state === 'error' && window.viewer.errors.some((e) => /forbidden/.test(e)), null, { what: 'a refusal' });
    const wrong = await browser.newPage();
    await wrong.goto(secured.url(0, '&token=00000000000000000000000000000000'));
    await until(wrong, () => window.viewer?.state === 'error', null, { what: 'a refusal of a wrong token' });
    const allowed = await browser.newPage();
    await allowed.goto(secured.url(0, `&token=${started.token}`));
    await live(allowed);
    const stored = await allowed.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length);
    assert.equal(stored, 0, 'nothing is kept in the browser');
    await Promise.all([denied.close(), wrong.close(), allowed.close()]);
  } finally {
    await secured.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
