// The seed's whole session flow, end to end (run by e2e/flow/run.sh inside a local control plane):
// kubectl apply -> the operator (as the chart's ServiceAccount) starts an instance on one of two
// agents -> status URL -> headless Chromium decodes frames -> a drag changes the picture ->
// kubectl patch of the resolution changes the decoded size -> kubectl delete stops the instance.
// Then the streaming frontend (as the chart's frontend ServiceAccount): a visitor clicks start and
// sees the stream, a second visitor finds the cluster full, ending the session frees the slot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launch, until, live, dragEffect } from '../browser/lib/browser.mjs';
import { NS, kubectl, eventually, bringUp, tearDown } from './lib/cluster.mjs';

const work = mkdtempSync(path.join(tmpdir(), 'openspace-flow-test-'));
let browser;
let agents;
let frontendUrl;

before(async () => {
  const cluster = await bringUp({ maxSessions: 1, idleTimeout: '4s' });
  ({ agents, frontendUrl } = cluster);
  // What the apiserver answers for the operator's identity (exit code 1 with "no" on stdout).
  const canI = (...args) => {
    try {
      return execFileSync('kubectl', ['--kubeconfig', cluster.operatorKubeconfig, 'auth', 'can-i', ...args, '-n', NS], { encoding: 'utf8' }).trim();
    } catch (e) {
      return (e.stdout ?? '').trim();
    }
  };
  assert.equal(canI('delete', 'pods'), 'no', 'the operator identity is not an admin');
  assert.equal(canI('patch', 'openspacesessions.openspace.io', '--subresource=status'), 'yes', 'it may write session status');
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await tearDown(Boolean(process.exitCode));
  rmSync(work, { recursive: true, force: true });
});


test('kubectl apply -> URL -> frames -> drag -> resize -> delete', async () => {
  const manifest = path.join(work, 'session.json');
  writeFileSync(manifest, JSON.stringify({
    apiVersion: 'openspace.io/v1alpha1', kind: 'OpenSpaceSession',
    metadata: { name: 'flow', namespace: NS }, spec: { resolution: { width: 960, height: 540 } },
  }));
  kubectl('apply', '-f', manifest);
  const status = await eventually('the session Running with a URL', () => {
    const s = JSON.parse(kubectl('-n', NS, 'get', 'oss', 'flow', '-o', 'json')).status;
    return s?.phase === 'Running' && s.url ? s : null;
  });
  const chosen = agents.find((a) => a.name === status.server);
  assert.ok(chosen, `placed on one of our agents: ${status.server}`);
  assert.ok(status.url.startsWith(`http://${chosen.ip}:4690/frontend/#/streaming?id=${status.instanceId}&token=`), status.url);

  const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
  await page.goto(status.url);
  await live(page, 15);
  await until(page, () => window.viewer.videoWidth === 960 && window.viewer.videoHeight === 540, null, { what: '960x540' });

  const { idle, dragged } = await dragEffect(page);
  assert.ok(dragged > 3 * idle + 1, `a drag changes the picture far more than time does (drag ${dragged}, idle ${idle})`);

  kubectl('-n', NS, 'patch', 'oss', 'flow', '--type=merge', '-p', '{"spec":{"resolution":{"width":640,"height":360}}}');
  await until(page, () => window.viewer.videoWidth === 640 && window.viewer.videoHeight === 360, null, { what: '640x360 after kubectl patch' });

  kubectl('-n', NS, 'delete', 'oss', 'flow', '--wait=true', '--timeout=30s');
  const slot = await eventually('the slot freed', () => {
    const answer = chosen.cmd('status', status.instanceId);
    return answer.status === 'IDLE' ? answer : null;
  });
  assert.equal(slot.error, 'none');
  const left = kubectl('-n', NS, 'get', 'oss', '-o', 'name');
  assert.equal(left, '', 'the session and its finalizer are gone');
  await page.close();
});

test('the frontend: start -> progress -> stream; a second visitor finds it full; end frees the slot', async () => {
  const visitor = async () => {
    const context = await browser.newContext({ viewport: { width: 800, height: 450 } });
    const page = await context.newPage();
    await page.goto(frontendUrl);
    await page.locator('#start').waitFor({ state: 'visible' });
    return { context, page };
  };
  const a = await visitor();
  await a.page.click('#start');
  await until(a.page, () => window.page.view?.state === 'running', null, { what: 'Running', timeout: 30000 });
  const frame = await (await a.page.$('#stream')).contentFrame();
  await frame.waitForFunction(() => window.viewer?.state === 'live' && window.viewer.framesDecoded >= 5, null, { timeout: 20000 });

  const [session] = JSON.parse(kubectl('-n', NS, 'get', 'oss', '-l', 'app.kubernetes.io/managed-by=openspace-frontend', '-o', 'json')).items;
  assert.ok(session, 'the frontend created a labelled session');
  assert.equal(session.spec.idleTimeout, '4s');
  const agentUrl = new URL(session.status.url);
  const token = new URLSearchParams(agentUrl.hash.split('?')[1]).get('token');
  // The page and the viewer in it hold neither the agent's address nor the instance token.
  for (const html of [await a.page.content(), await frame.content(), await frame.evaluate(() => location.href)]) {
    assert.ok(!html.includes(agentUrl.hostname) && !html.includes(token), 'no cluster address or token in the page');
  }
  assert.equal(await frame.evaluate(() => location.hash), '#/streaming?id=0');

  const b = await visitor();
  await b.page.click('#start');
  await b.page.locator('#message.full').waitFor({ state: 'visible', timeout: 10000 });
  assert.match(await b.page.locator('#message').textContent(), /All 1 sessions are in use/);

  const chosen = agents.find((x) => x.name === session.status.server);
  await a.page.click('#end');
  await until(a.page, () => window.page.view?.state === 'none', null, { what: 'no session after End' });
  await eventually('the slot freed', () => chosen.cmd('status', session.status.instanceId).status === 'IDLE');
  await eventually('the session deleted', () => kubectl('-n', NS, 'get', 'oss', '-o', 'name') === '');

  // Now the second visitor gets one.
  await b.page.click('#start');
  await until(b.page, () => window.page.view?.state === 'running', null, { what: 'Running for the second visitor', timeout: 30000 });
  await b.page.click('#end');
  await eventually('the second session deleted', () => kubectl('-n', NS, 'get', 'oss', '-o', 'name') === '');
  await a.context.close();
  await b.context.close();
});

test('the frontend: closing the page ends the session after its idleTimeout', async () => {
  const context = await browser.newContext({ viewport: { width: 640, height: 360 } });
  const page = await context.newPage();
  await page.goto(frontendUrl);
  await page.click('#start');
  const frame = await (await (await page.waitForSelector('#stream:not([hidden])', { timeout: 30000 })).contentFrame());
  await frame.waitForFunction(() => window.viewer?.framesDecoded >= 1, null, { timeout: 20000 });
  const [session] = JSON.parse(kubectl('-n', NS, 'get', 'oss', '-o', 'json')).items;
  const chosen = agents.find((x) => x.name === session.status.server);
  await context.close();
  // No viewer for idleTimeout (4 s): the operator stops the instance and the session is Ended.
  const ended = await eventually('the session Ended', () => {
    const s = JSON.parse(kubectl('-n', NS, 'get', 'oss', session.metadata.name, '-o', 'json'));
    return s.status?.phase === 'Ended' ? s : null;
  }, 30000);
  assert.match(ended.status.message ?? '', /idle/i);
  await eventually('the slot freed', () => chosen.cmd('status', session.status.instanceId).status === 'IDLE');
});
