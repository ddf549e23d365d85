// OpenSpace's API clients against a built-in instance, judged by the decoded picture: a camera
// velocity set on an /api/N WebSocket or on the TCP API stops when that connection closes
// without releasing it (a client gone mid-drag), and OpenSpace's Python client (PyPI
// openspace-api) changes the picture with setProperty over the TCP API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, freePort } from '../lib/agent.mjs';
import { launch, live, grab, difference } from '../lib/browser.mjs';

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const client = path.join(repo, 'agent', 'tests', 'python', 'api_client.py');
/** The python of the cached venv with PyPI's openspace-api (created on first use). */
const python = () => execFileSync(path.join(repo, 'scripts', 'python-api-venv.sh'), { encoding: 'utf8' }).trim();
let agent;
let browser;
let page;
let tcpPort;

before(async () => {
  tcpPort = await freePort();
  agent = await Agent.start(['--capacity', '1', '--api-tcp-base-port', String(tcpPort)]);
  browser = await launch();
  assert.equal(agent.cmd('start').error, 'none');
  page = await browser.newPage({ viewport: { width: 960, height: 540 } });
  await page.goto(agent.url(0));
});

after(async () => {
  await browser?.close();
  if (agent) assert.equal(await agent.stop(), 0, 'the agent exits cleanly');
});

/** How much the picture changes in `ms`: the median of three windows (frames arrive unevenly). */
async function change(ms) {
  const diffs = [];
  for (let i = 0; i < 3; i++) {
    const a = await grab(page);
    await page.waitForTimeout(ms);
    diffs.push(difference(a, await grab(page)));
  }
  return diffs.sort((x, y) => x - y)[1];
}

test('the camera stops when the API socket that set it moving closes mid-drag', async () => {
  await live(page);
  // Short windows: turning moves the whole view at once, while on its own only the planet's
  // slow spin shows (at any camera angle).
  const idle = await change(200);
  // Connect, set a velocity, and close without the all-zeros release. Roll, so the view after
  // it shows what it showed before (turned), and the planet's own change stays comparable.
  await page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${location.host}/api/0`);
    ws.onerror = reject;
    ws.onmessage = (e) => {
      if (JSON.parse(e.data).payload?.type !== 'connect') return;
      ws.send(JSON.stringify({ topic: 1, payload: { type: 'inputState', inputState: { values: { localRollX: 1.0 } } } }));
      window.apiSocket = ws;
      resolve();
    };
    ws.onopen = () => ws.send(JSON.stringify({ topic: 1, type: 'flightcontroller', payload: { type: 'connect' } }));
  }));
  const turning = await change(200);
  assert.ok(turning > 3 * idle + 1, `the velocity turns the camera (turning ${turning}, idle ${idle})`);
  await page.evaluate(() => window.apiSocket.close());
  await page.waitForTimeout(400);
  const after = await change(200);
  assert.ok(after < 2 * idle + 1, `the camera stopped with the socket (after ${after}, idle ${idle}, turning ${turning})`);
});

test('the camera stops when a TCP API client that set it moving exits without releasing it', async () => {
  await live(page);
  const idle = await change(200);
  // The Python client sets a roll velocity and exits after 2 s; its process ending closes the
  // socket.
  const spin = promisify(execFile)(python(), [client, 'spin', '127.0.0.1', String(tcpPort), '', '2'], { timeout: 20000 });
  await page.waitForTimeout(1000);
  const turning = await change(200);
  const { stdout } = await spin;
  assert.deepEqual(JSON.parse(stdout).focusNodes, ['Earth', 'Moon', 'Sun']);
  await page.waitForTimeout(400);
  const after = await change(200);
  assert.ok(turning > 3 * idle + 1, `the velocity turns the camera (turning ${turning}, idle ${idle})`);
  assert.ok(after < 2 * idle + 1, `the camera stopped with the client (after ${after}, idle ${idle}, turning ${turning})`);
});

test("OpenSpace's Python client changes the picture with setProperty over the TCP API", async () => {
  await live(page);
  const a = await grab(page);
  await page.waitForTimeout(1000);
  const b = await grab(page);
  const idle = difference(a, b);
  const { stdout } = await promisify(execFile)(python(), [client, 'set', '127.0.0.1', String(tcpPort), '', 'RenderEngine.HorizFieldOfView', '30'], { timeout: 20000 });
  assert.equal(JSON.parse(stdout).value, 30, 'the property reads back');
  await page.waitForTimeout(300);
  const c = await grab(page);
  const zoomed = difference(b, c);
  assert.ok(zoomed > 3 * idle + 1, `a narrower field of view changes the picture far more than time does (zoomed ${zoomed}, idle ${idle})`);
});
