// A viewer behind a strict firewall, an agent on a node nobody reaches over UDP, and a real
// coturn relay between them (the hosts: net.sh; started by run.sh). What the viewer page shows
// without a relay, with one over UDP and over TCP, with a credential the relay refuses, with an
// agent that uses nothing but the relay, and on a node without a default route.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { live, until } from '../browser/lib/browser.mjs';
import { unavailable, firewall, launchViewer, startAgent, withoutDefaultRoute, Relay, RELAY, TURN_PORT } from './lib/hosts.mjs';

const UDP = `turn:${RELAY}:${TURN_PORT}?transport=udp`;
const TCP = `turn:${RELAY}:${TURN_PORT}?transport=tcp`;
const SAYS_WHY_MS = 10000;

let dir;
let secret;
let secretFile;
let relay;
let browser;
// What one test started, stopped after it whether it passed or not.
let agent;
let page;

before(async () => {
  if (unavailable) throw new Error(unavailable);
  dir = mkdtempSync(path.join(process.env.OPENSPACE_TURN_DIR || tmpdir(), 'openspace-turn-'));
  secret = randomBytes(24).toString('base64url');
  secretFile = path.join(dir, 'turn-secret');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  relay = await Relay.start(dir, secret);
  browser = await launchViewer(dir);
});

afterEach(async () => {
  await page?.close();
  page = null;
  if (agent) assert.equal(await agent.stop(), 0, 'the agent exits cleanly');
  agent = null;
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The agent on the node with `extra` flags, one started instance, and the page open on it. */
async function open(extra) {
  agent = await startAgent(extra);
  assert.equal(agent.cmd('start').error, 'none');
  // Running before the page opens, so that the page's errors are about the network alone.
  for (let tries = 0; agent.cmd('status', 0).status !== 'RUNNING'; tries++) {
    assert.ok(tries < 100, 'instance 0 runs within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  page = await browser.newPage({ viewport: { width: 640, height: 360 } });
  const opened = Date.now();
  await page.goto(agent.url(0));
  return opened;
}

/** The page's reason for not streaming, once it gives one, and how long after `opened`. */
async function reason(opened) {
  const errors = await until(page, () => window.viewer.errors.length && window.viewer.errors,
    null, { timeout: SAYS_WHY_MS + 2000, what: 'the page to say why it does not stream' });
  const shown = await page.locator('#status-text').textContent();
  return { errors, shown, afterMs: Date.now() - opened, frames: await page.evaluate(() => window.viewer.framesDecoded) };
}

const route = () => until(page, () => window.viewer.stats.localCandidate && window.viewer.stats, null, { what: 'the selected candidate pair' });

test('without a relay the stream does not start, and the page says why within 10 s', async () => {
  firewall('ingress');
  const said = await reason(await open([]));
  assert.deepEqual(said.errors, ['the rendering server is not reachable']);
  assert.match(said.shown, /the rendering server is not reachable/);
  assert.ok(said.afterMs <= SAYS_WHY_MS, `said so ${said.afterMs} ms after the page opened`);
  assert.equal(said.frames, 0);
});

test('TURN over UDP: frames decode, and the viewer reaches the agent through the relay', async () => {
  firewall('ingress');
  await open(['--turn-url', UDP, '--turn-secret-file', secretFile]);
  await live(page, 15);
  const stats = await route();
  assert.equal(stats.localCandidate, 'relay', `route ${stats.route}`);
  assert.equal(stats.relayProtocol, 'udp', `route ${stats.route}`);
  // The page got a credential, never the secret, and nothing of it is in its source or URL.
  const source = await page.content();
  assert.ok(!source.includes(secret) && !page.url().includes(secret));
  assert.ok(!relay.logs.some((l) => l.includes(secret)));
});

test('UDP blocked everywhere for the viewer: TURN over TCP, frames decode', async () => {
  firewall('tcp-only');
  await open(['--turn-url', UDP, '--turn-url', TCP, '--turn-secret-file', secretFile]);
  await live(page, 15);
  const stats = await route();
  assert.equal(stats.localCandidate, 'relay', `route ${stats.route}`);
  assert.equal(stats.relayProtocol, 'tcp', `route ${stats.route}`);
});

test('a forged credential is refused by the relay, and the page says so', async () => {
  firewall('ingress');
  // The agent signs with a secret coturn does not know: every password it hands out is forged.
  const forged = path.join(dir, 'forged-secret');
  writeFileSync(forged, randomBytes(24).toString('base64url'), { mode: 0o600 });
  const refusals = relay.logs.length;
  const said = await reason(await open(['--turn-url', UDP, '--turn-url', TCP, '--turn-secret-file', forged]));
  assert.deepEqual(said.errors, ['the media relay refused the credentials']);
  assert.match(said.shown, /the media relay refused the credentials/);
  assert.ok(said.afterMs <= SAYS_WHY_MS, `said so ${said.afterMs} ms after the page opened`);
  assert.equal(said.frames, 0);
  // And it was the relay that said no: coturn's own log of the failed message integrity check.
  assert.ok(relay.logs.slice(refusals).some((l) => /check_stun_auth: Cannot find credentials of user <\d+:/.test(l)),
    `coturn logged no refusal:\n${relay.logs.slice(refusals).join('\n')}`);
});

test('an agent that uses only the relay (--ice-transport relay) still streams', async () => {
  firewall('ingress');
  await open(['--turn-url', UDP, '--turn-secret-file', secretFile, '--ice-transport', 'relay']);
  await live(page, 15);
  const stats = await route();
  // The agent gathered nothing but its relayed address, so that is what the viewer talks to.
  assert.equal(stats.remoteCandidate, 'relay', `route ${stats.route}`);
  assert.equal(stats.localCandidate, 'relay', `route ${stats.route}`);
});

test('a node without a default route (no mDNS there) still streams through the relay', async () => {
  firewall('ingress');
  // Joining mDNS's multicast group fails with ENODEV on such a node; the agent used to end every
  // stream on it ("io error: No such device") and now builds its peers without mDNS.
  await withoutDefaultRoute('node', async () => {
    await open(['--turn-url', UDP, '--turn-secret-file', secretFile]);
    await live(page, 15);
    const stats = await route();
    assert.equal(stats.localCandidate, 'relay', `route ${stats.route}`);
    assert.ok(agent.logs.some((l) => /cannot use mDNS here/.test(l)), 'the agent said why it went without mDNS');
  });
});

test('a relay the viewer cannot reach: the page says so within 10 s', async () => {
  firewall('no-relay');
  const said = await reason(await open(['--turn-url', UDP, '--turn-url', TCP, '--turn-secret-file', secretFile]));
  assert.deepEqual(said.errors, ['cannot reach the media relay']);
  assert.match(said.shown, /cannot reach the media relay/);
  assert.ok(said.afterMs <= SAYS_WHY_MS, `said so ${said.afterMs} ms after the page opened`);
  assert.equal(said.frames, 0);
});
