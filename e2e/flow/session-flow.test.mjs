// The seed's whole session flow, end to end (run by e2e/flow/run.sh inside a local control plane):
// kubectl apply -> the operator (as the chart's ServiceAccount) starts an instance on one of two
// agents -> status URL -> headless Chromium decodes frames -> a drag changes the picture ->
// kubectl patch of the resolution changes the decoded size -> kubectl delete stops the instance.
// Then the streaming frontend (as the chart's frontend ServiceAccount): a visitor clicks start and
// sees the stream, a second visitor finds the cluster full, ending the session frees the slot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { binary } from '../browser/lib/agent.mjs';
import { launch, until, live, grab, difference } from '../browser/lib/browser.mjs';

const NS = 'openspace';
const RELEASE = 'openspace';
const work = mkdtempSync(path.join(tmpdir(), 'openspace-flow-'));
const processes = [];
let browser;

const kubectl = (...args) => execFileSync('kubectl', args, { encoding: 'utf8' }).trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function eventually(what, fn, timeout = 30000) {
  const started = Date.now();
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() - started > timeout) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

/** Starts a process, keeps its output for failures, resolves once `ready` matches a line. */
function start(name, file, args, env = {}, ready = null) {
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = [];
  const entry = { name, child, logs };
  processes.push(entry);
  const seen = new Promise((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        logs.push(line);
        if (ready && ready.test(line)) resolve();
      });
    }
    child.on('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${logs.join('\n')}`)));
    if (!ready) resolve();
  });
  return { entry, seen };
}

/** An agent on its own loopback address with the seed's fixed ports, registered as a Ready Pod. */
async function agent(name, ip, tokenFile) {
  const { seen } = start(name, binary('openspace-agent'), [
    '--command-listen', `${ip}:4699`, '--http-listen', `${ip}:4690`, '--signaling-listen', `${ip}:8443`,
    '--api-host', ip, '--webrtc-address', ip, '--capacity', '2', '--token-file', tokenFile,
  ], { RUST_LOG: 'info,webrtc=warn,rtc=warn' }, /command_addr=/);
  await seen;
  const pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: NS, labels: {
      'app.kubernetes.io/name': 'openspace', 'app.kubernetes.io/component': 'agent', 'app.kubernetes.io/instance': RELEASE,
    } },
    spec: { containers: [{ name: 'agent', image: 'openspace-agent:test', ports: [{ name: 'command', containerPort: 4699 }] }] },
  };
  writeFileSync(path.join(work, `${name}.json`), JSON.stringify(pod));
  kubectl('apply', '-f', path.join(work, `${name}.json`));
  kubectl('-n', NS, 'patch', 'pod', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: {
    phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }],
  } }));
  return { name, ip, cmd: (...args) => JSON.parse(runCmd(ip, tokenFile, args)) };
}

function runCmd(ip, tokenFile, args) {
  try {
    return execFileSync(binary('openspace-cmd'), ['--url', `ws://${ip}:4699`, '--token-file', tokenFile, ...args.map(String)], { encoding: 'utf8' });
  } catch (e) {
    return e.stdout;
  }
}

let agents;

before(async () => {
  assert.ok(process.env.KUBECONFIG && process.env.OPERATOR_TOKEN, 'run through e2e/flow/run.sh');
  // The whole chart with its defaults: every object must be accepted by a real apiserver. With no
  // controller-manager or kubelet here its Deployment and DaemonSet never run pods; the operator
  // and the agents run below as local processes, under the identities the chart gives them.
  execFileSync('helm', ['install', RELEASE, 'charts/openspace', '-n', NS, '--create-namespace',
    '--set', 'frontend.enabled=true'], { stdio: 'inherit' });
  for (const kind of ['deployment/openspace-operator', 'daemonset/openspace-agent', 'clusterrole/openspace-operator',
    'role/openspace-operator', 'networkpolicy/openspace-agent', 'serviceaccount/openspace-operator']) {
    kubectl('-n', NS, 'get', kind, '-o', 'name');
  }
  const secret = JSON.parse(kubectl('-n', NS, 'get', 'secret', `${RELEASE}-command-token`, '-o', 'json'));
  const tokenFile = path.join(work, 'command-token');
  writeFileSync(tokenFile, Buffer.from(secret.data.token, 'base64').toString());

  agents = [await agent('agent-a', '127.0.3.1', tokenFile), await agent('agent-b', '127.0.3.2', tokenFile)];

  // The operator with nothing but the ServiceAccount's rights.
  const kubeconfig = tokenKubeconfig('operator', process.env.OPERATOR_TOKEN);
  let admin = true;
  try {
    execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'auth', 'can-i', 'delete', 'pods', '-n', NS], { stdio: 'ignore' });
  } catch {
    admin = false; // exit code 1: "no"
  }
  assert.equal(admin, false, 'the operator identity is not an admin');
  start('operator', binary('openspace-operator'), [
    '--agent-namespace', NS, '--lease-namespace', NS,
    '--agent-selector', `app.kubernetes.io/name=openspace,app.kubernetes.io/component=agent,app.kubernetes.io/instance=${RELEASE}`,
    '--command-token-file', tokenFile, '--metrics-listen', '127.0.0.1:0', '--identity', 'e2e',
  ], { KUBECONFIG: kubeconfig, RUST_LOG: 'info,kube=warn' });
  // The frontend likewise, allowing one live session.
  const frontendProcess = start('frontend', binary('openspace-frontend'), [
    '--listen', '127.0.0.1:0', '--namespace', NS, '--max-sessions', '1', '--idle-timeout', '60s',
  ], { KUBECONFIG: tokenKubeconfig('frontend', process.env.FRONTEND_TOKEN), RUST_LOG: 'info,kube=warn' }, /listen_addr=/);
  await frontendProcess.seen;
  frontendUrl = `http://${frontendProcess.entry.logs.join('\n').match(/listen_addr=(\S+)/)[1]}/`;
  browser = await launch();
});

let frontendUrl;

/** A kubeconfig for a static-token user (what a pod of a ServiceAccount would have). */
function tokenKubeconfig(name, token) {
  const file = path.join(work, `${name}.kubeconfig`);
  writeFileSync(file, [
    'apiVersion: v1', 'kind: Config',
    'clusters: [{name: local, cluster: {server: "' + process.env.APISERVER + '", insecure-skip-tls-verify: true}}]',
    `users: [{name: ${name}, user: {token: "${token}"}}]`,
    `contexts: [{name: ${name}, context: {cluster: local, user: ${name}, namespace: ${NS}}}]`,
    `current-context: ${name}`, '',
  ].join('\n'));
  return file;
}

after(async () => {
  await browser?.close();
  for (const { name, child, logs } of processes.reverse()) {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    if (process.exitCode) console.log(`---- ${name} ----\n${logs.join('\n')}`);
  }
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

  const a = await grab(page);
  await page.waitForTimeout(400);
  const b = await grab(page);
  const idle = difference(a, b);
  const box = await page.locator('#remote-video').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + box.width / 2 + i * 30, box.y + box.height / 2 + i * 5);
  await page.mouse.up();
  await page.waitForTimeout(400);
  const c = await grab(page);
  const dragged = difference(b, c);
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
  assert.equal(session.spec.idleTimeout, '60s');
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
