// Every browser gets a picture: the codec is whatever the browser's answer picks among those the
// agent offers. Firefox ESR (Debian's, without H.264) through puppeteer-core's WebDriver BiDi,
// Chromium through playwright-core; our viewer page, and a client that behaves like OpenSpace's
// original browser client (it names no codec and reads only ERROR text, never JSON errors).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from '../lib/agent.mjs';
import { launch, until, live, grab, variance, sleep } from '../lib/browser.mjs';
import { launchFirefox, newFirefoxPage } from '../lib/firefox.mjs';
import { originalClient, originalVideo } from '../lib/original-client.mjs';

let agent;
let chromium;
let firefox;

before(async () => {
  agent = await Agent.start(['--capacity', '2']);
  [chromium, firefox] = await Promise.all([launch(), launchFirefox()]);
  const started = agent.cmd('start');
  assert.equal(started.error, 'none');
});

after(async () => {
  await chromium?.close();
  await firefox?.close();
  if (agent) assert.equal(await agent.stop(), 0, 'the agent exits cleanly');
});

/** A page of the agent's own origin without a client of its own (Chromium's local network access
 * checks refuse loopback sockets from about:blank). */
const blankPage = () => `http://${agent.httpAddr}/healthz`;

/** { frames, codec } of our viewer page. */
const viewerVideo = (page) =>
  page.evaluate(() => ({ frames: window.viewer?.framesDecoded ?? 0, codec: window.viewer?.stats?.codec ?? null }));

/** Waits until the viewer page has decoded 5 frames and knows its codec; returns the codec. */
const codecOf = (page) =>
  until(page, () => window.viewer?.framesDecoded > 5 && window.viewer?.stats?.codec, null, { what: 'a codec' });

/** Frames the page decodes in `ms` milliseconds. */
async function framesIn(page, ms, video = viewerVideo) {
  const before = (await video(page)).frames;
  await sleep(ms);
  return (await video(page)).frames - before;
}

test('Firefox ESR on the viewer page, no codec named: VP8 frames decode', async () => {
  const page = await newFirefoxPage(firefox, { width: 640, height: 360 });
  await page.goto(agent.url(0));
  await live(page, 15);
  assert.equal(await codecOf(page), 'VP8');
  const picture = await grab(page);
  assert.ok(variance(picture) > 100, `the decoded picture is not flat: variance ${variance(picture)}`);
  await page.close();
});

test('one instance, two codecs: Chromium on H.264 and Firefox on VP8 stream at once', async () => {
  const fox = await newFirefoxPage(firefox, { width: 640, height: 360 });
  const chrome = await chromium.newPage({ viewport: { width: 640, height: 360 } });
  await Promise.all([fox.goto(agent.url(0)), chrome.goto(agent.url(0))]);
  await Promise.all([live(fox), live(chrome)]);
  assert.equal(await codecOf(fox), 'VP8');
  assert.equal(await codecOf(chrome), 'H264');
  assert.equal(agent.cmd('status', 0).viewers, 2);
  const [foxFrames, chromeFrames] = await Promise.all([framesIn(fox, 1500), framesIn(chrome, 1500)]);
  assert.ok(foxFrames > 10 && chromeFrames > 10, `both keep decoding: VP8 ${foxFrames}, H.264 ${chromeFrames} frames in 1.5 s`);
  await Promise.all([fox.close(), chrome.close()]);
});

for (const [name, open, expected] of [
  ['Chromium', () => chromium.newPage(), 'H264'],
  ['Firefox ESR', () => newFirefoxPage(firefox), 'VP8'],
]) {
  test(`a client like the original one gets a picture in ${name} (${expected})`, async () => {
    const page = await open();
    await page.goto(blankPage());
    await page.evaluate(originalClient, { signalingUrl: `ws://${agent.signalingAddr}/`, instance: 0 });
    await until(page, async () => {
      const pc = window.original?.pc;
      if (!pc) return null;
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 10) return true;
      }
      return null;
    }, null, { what: 'frames in the original client' });
    const video = await page.evaluate(originalVideo);
    assert.equal(video.codec, expected);
    const state = await page.evaluate(() => ({ closed: window.original.closed, errors: window.original.errors, candidates: window.original.remoteCandidates }));
    assert.deepEqual({ closed: state.closed, errors: state.errors }, { closed: null, errors: [] }, 'nothing the original client cannot read');
    assert.ok(state.candidates >= 6, `at least 6 candidates, as the original waits for: ${state.candidates}`);
    assert.ok(await framesIn(page, 1000, (p) => p.evaluate(originalVideo)) > 5, 'it keeps decoding');
    await page.close();
  });
}

test('an answer that accepts none of the offered codecs gets an ERROR line; the other viewers keep streaming', async () => {
  const viewer = await chromium.newPage({ viewport: { width: 640, height: 360 } });
  await viewer.goto(agent.url(0));
  await live(viewer);

  // A raw signaling client (in a page, for its WebSocket) that answers with AV1 only.
  const raw = await chromium.newPage();
  await raw.goto(blankPage());
  const reply = await raw.evaluate((url) => new Promise((resolve, reject) => {
    const id = 4242;
    const ws = new WebSocket(url);
    const send = (m) => ws.send(JSON.stringify(m));
    setTimeout(() => reject(new Error('no reply to the AV1 answer')), 15000);
    ws.onopen = () => send({ type: 'REGISTER', caller_id: id });
    ws.onmessage = (e) => {
      if (e.data === 'REGISTER') return send({ type: 'SESSION', caller_id: id, content: 0 });
      if (e.data === 'SESSION_OK') return;
      if (e.data.startsWith('ERROR')) return resolve(e.data);
      const msg = JSON.parse(e.data);
      if (msg.type !== 'SDP') return;
      // The offer turned into an answer whose video section accepts only AV1 (payload 45).
      const sdp = msg.content.sdp.sdp.split('\r\n').filter((l) => !/^a=(rtpmap|fmtp|rtcp-fb):/.test(l) && l !== '')
        .map((l) => l.startsWith('m=video') ? l.replace(/(SAVPF).*$/, '$1 45') : l)
        .map((l) => l === 'a=sendonly' ? 'a=recvonly' : l.replace('a=setup:actpass', 'a=setup:active'))
        .flatMap((l) => l.startsWith('m=video') ? [l] : l === 'a=recvonly' ? [l, 'a=rtpmap:45 AV1/90000'] : [l])
        .join('\r\n') + '\r\n';
      send({ type: 'SDP', caller_id: id, content: { sdp: { type: 'answer', sdp } } });
    };
  }), `ws://${agent.signalingAddr}/`);
  assert.match(reply, /^ERROR: .*accepts none of the offered codecs/);
  assert.match(reply, /H264\/96/);
  await raw.close();

  assert.ok(await framesIn(viewer, 1000) > 10, 'the other viewer keeps decoding');
  assert.equal(agent.cmd('status', 0).status, 'RUNNING');
  await viewer.close();
});
