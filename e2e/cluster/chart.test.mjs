// The Helm chart on a real node (run by e2e/cluster/run.sh inside e2e/cluster/cluster.sh): the
// images built from the shipped Dockerfiles, the operator Deployment, the agent DaemonSet on the
// GPU-labelled node and the frontend running as real pods under kubelet and containerd. Then
// what users meet: a session streamed to Chromium from the agent pod, the leader's pod deleted,
// the agent's pod deleted, the apiserver restarted, a namespace with live sessions deleted, an
// upgrade of the agent while a session runs, and an x11 instance inside the upgraded agent pod.
// The tests run in order and build on each other (one cluster, about a minute to start).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launch, until, live, dragEffect, typeIntoTerminal } from '../browser/lib/browser.mjs';
import { binary } from '../browser/lib/agent.mjs';
import { kubectl, eventually, sleep } from '../flow/lib/kube.mjs';

const NS = 'openspace';
const RELEASE = 'openspace';
const NODE_IP = process.env.NODE_IP;
const NODE_NAME = process.env.NODE_NAME;
const LEASE_SECONDS = 6;
const work = mkdtempSync(path.join(tmpdir(), 'openspace-cluster-test-'));
let browser;
let commandToken;

const json = (...args) => JSON.parse(kubectl(...args, '-o', 'json'));
const podsOf = (component) => json('-n', NS, 'get', 'pods', '-l', `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=${component}`).items
  .filter((p) => !p.metadata.deletionTimestamp);
const ready = (pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
const restarts = (pod) => (pod.status?.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0);
const leaseHolder = () => {
  try {
    return json('-n', NS, 'get', 'lease', `${RELEASE}-operator`).spec?.holderIdentity ?? null;
  } catch {
    return null;
  }
};

/** The agent's command API from the host (hostNetwork: the pod listens on the node address). */
function cmd(...args) {
  try {
    return JSON.parse(execFileSync(binary('openspace-cmd'), ['--url', `ws://${NODE_IP}:4699`, '--token-file', commandToken, ...args.map(String)], { encoding: 'utf8' }));
  } catch (e) {
    return JSON.parse(e.stdout || '{"error":"no answer"}');
  }
}

function apply(name, spec = {}, namespace = NS) {
  const file = path.join(work, `${namespace}-${name}.json`);
  writeFileSync(file, JSON.stringify({
    apiVersion: 'openspace.io/v1alpha1', kind: 'OpenSpaceSession',
    metadata: { name, namespace }, spec: { resolution: { width: 640, height: 360 }, ...spec },
  }));
  kubectl('apply', '-f', file);
}

const session = (name, namespace = NS) => json('-n', namespace, 'get', 'oss', name);

async function running(name, namespace = NS, timeout = 60000) {
  return eventually(`session ${namespace}/${name} Running with a URL`, () => {
    const s = session(name, namespace).status;
    if (s?.phase === 'Failed') throw new Error(`session ${name} Failed: ${s.message}`);
    return s?.phase === 'Running' && s.url ? s : null;
  }, timeout);
}

/** Opens the session's URL in Chromium (a window of the session's size), waits for frames. */
async function watch(status, minFrames = 5, viewport = { width: 640, height: 360 }) {
  const page = await browser.newPage({ viewport });
  await page.goto(status.url);
  await live(page, minFrames);
  return page;
}

/** A running session from Chromium's point of view: frames keep coming. */
async function stillStreaming(page) {
  const before = await page.evaluate(() => window.viewer.framesDecoded);
  await eventually('more decoded frames', () => page.evaluate((n) => window.viewer.framesDecoded > n + 10, before), 10000);
}

/**
 * After the test, pass or fail: no session left in the release namespace, so that one failure
 * does not starve the next tests of slots.
 */
function cleanUp(t) {
  t.after(() => {
    try {
      kubectl('-n', NS, 'delete', 'oss', '--all', '--wait=true', '--timeout=60s');
    } catch (e) {
      console.log(`cleaning up sessions: ${e.message}`);
    }
  });
}

/** Events and logs of every pod in the namespace, so that a red run explains itself. */
function explain() {
  const out = [];
  const run = (...args) => {
    try {
      return kubectl(...args);
    } catch (e) {
      return `(${args.join(' ')}: ${e.message.split('\n')[0]})`;
    }
  };
  out.push(run('get', 'nodes,pods,oss', '-A', '-o', 'wide'));
  out.push(run('-n', NS, 'get', 'events', '--sort-by=.lastTimestamp'));
  for (const pod of json('-n', NS, 'get', 'pods').items) {
    const name = pod.metadata.name;
    out.push(`---- pod ${name} ----`, run('-n', NS, 'describe', 'pod', name));
    out.push(run('-n', NS, 'logs', name, '--all-containers', '--tail=80'));
    if (restarts(pod) > 0) out.push(`-- previous --`, run('-n', NS, 'logs', name, '--all-containers', '--previous', '--tail=80'));
  }
  return out.join('\n');
}

// On top of e2e/cluster/values.yaml (what this node needs): a short lease, so failover is quick.
const values = { operator: { leaderElection: { leaseDuration: `${LEASE_SECONDS}s` } } };

function helm(verb, extra = {}) {
  const file = path.join(work, `values-${verb}.json`);
  writeFileSync(file, JSON.stringify(extra));
  const started = Date.now();
  const files = verb === 'install' ? ['--create-namespace', '-f', 'e2e/cluster/values.yaml'] : ['--reuse-values'];
  // An upgrade does not wait: with OnDelete the agent pod keeps its old template on purpose.
  const wait = verb === 'install' ? ['--wait', '--timeout', '3m'] : [];
  execFileSync('helm', [verb, RELEASE, 'charts/openspace', '-n', NS, ...files, '-f', file, ...wait],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  return Date.now() - started;
}

before(async () => {
  const took = helm('install', values);
  console.log(`helm install --wait: ${took} ms`);
  const secret = json('-n', NS, 'get', 'secret', `${RELEASE}-command-token`);
  commandToken = path.join(work, 'command-token');
  writeFileSync(commandToken, Buffer.from(secret.data.token, 'base64').toString(), { mode: 0o600 });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  if (process.exitCode) console.log(explain());
  rmSync(work, { recursive: true, force: true });
});

test('the chart\'s pods run on the node: two operators (one leads), the agent on the GPU node, the frontend', async () => {
  const operators = await eventually('2 Ready operator pods', () => {
    const pods = podsOf('operator');
    return pods.length === 2 && pods.every(ready) ? pods : null;
  });
  const holder = await eventually('a leader', leaseHolder);
  assert.ok(operators.some((p) => p.metadata.name === holder), `the Lease is held by an operator pod: ${holder}`);

  const [agent] = await eventually('the agent pod Ready', () => {
    const pods = podsOf('agent');
    return pods.length === 1 && ready(pods[0]) ? pods : null;
  });
  assert.equal(agent.spec.nodeName, NODE_NAME);
  assert.equal(agent.spec.hostNetwork, true);
  assert.equal(agent.spec.containers[0].resources.limits['nvidia.com/gpu'], '1', 'the agent asks for a GPU');
  const node = json('get', 'node', NODE_NAME);
  assert.equal(node.metadata.labels['nvidia.com/gpu.present'], 'true');
  assert.ok(Number(node.status.allocatable['nvidia.com/gpu']) >= 1, 'the node offers GPUs');
  assert.equal(agent.spec.securityContext.runAsUser, 65532);

  const [frontend] = await eventually('the frontend pod Ready', () => {
    const pods = podsOf('frontend');
    return pods.length === 1 && ready(pods[0]) ? pods : null;
  });
  // The frontend's page, from its pod on the pod network.
  const page = await browser.newPage();
  await page.goto(`http://${frontend.status.podIP}:8090/`);
  await page.locator('#start').waitFor({ state: 'visible' });
  await page.close();
  assert.equal(cmd('server-status').total, 2, 'the agent answers with the chart\'s capacity');
});

test('kubectl apply -> Running -> Chromium decodes from the agent pod -> drag -> resize -> delete', async (t) => {
  cleanUp(t);
  apply('first', { resolution: { width: 960, height: 540 } });
  const status = await running('first');
  const [agent] = podsOf('agent');
  assert.equal(status.server, agent.metadata.name);
  assert.ok(status.url.startsWith(`http://${NODE_IP}:4690/frontend/#/streaming?id=${status.instanceId}&token=`), status.url);

  const page = await watch(status, 10, { width: 960, height: 540 });
  await until(page, () => window.viewer.videoWidth === 960 && window.viewer.videoHeight === 540, null, { what: '960x540' });
  const { idle, dragged } = await dragEffect(page);
  assert.ok(dragged > 3 * idle + 1, `a drag changes the picture far more than time does (drag ${dragged}, idle ${idle})`);

  kubectl('-n', NS, 'patch', 'oss', 'first', '--type=merge', '-p', '{"spec":{"resolution":{"width":640,"height":360}}}');
  await until(page, () => window.viewer.videoWidth === 640 && window.viewer.videoHeight === 360, null, { what: '640x360 after kubectl patch' });

  kubectl('-n', NS, 'delete', 'oss', 'first', '--wait=true', '--timeout=30s');
  await eventually('the instance stopped', () => cmd('status', status.instanceId).status === 'IDLE');
  await page.close();
});

test('deleting the leading operator pod: another replica leads within the lease duration, one stands by', async (t) => {
  cleanUp(t);
  const leader = leaseHolder();
  assert.ok(podsOf('operator').some((p) => p.metadata.name === leader), `an operator pod leads: ${leader}`);
  const started = Date.now();
  kubectl('-n', NS, 'delete', 'pod', leader, '--wait=false');
  // The leader hands the Lease back on SIGTERM: the standby, or the replacement pod if it looks
  // first, takes it.
  const next = await eventually('another replica holds the Lease', () => {
    const holder = leaseHolder();
    return holder && holder !== leader ? holder : null;
  }, 4 * LEASE_SECONDS * 1000);
  const took = Date.now() - started;
  console.log(`leader pod deleted -> ${next} leads: ${took} ms (lease ${LEASE_SECONDS} s)`);
  assert.ok(took <= LEASE_SECONDS * 1000, `taken over within the lease duration (${took} ms)`);

  apply('after-failover');
  await running('after-failover');
  const pods = await eventually('two Ready operator pods again', () => {
    const now = podsOf('operator').filter((p) => p.metadata.name !== leader);
    return now.length === 2 && now.every(ready) ? now : null;
  });
  await sleep(LEASE_SECONDS * 1000);
  assert.equal(leaseHolder(), next, 'the leader stays leader');
  assert.ok(pods.some((p) => p.metadata.name === next), 'it is one of the two pods; the other stands by');
});

test('deleting the agent pod: the DaemonSet recreates it, its sessions fail with a reason, new ones run there', async (t) => {
  cleanUp(t);
  apply('on-old-pod');
  const before = await running('on-old-pod');
  const [old] = podsOf('agent');
  assert.equal(before.server, old.metadata.name);
  kubectl('-n', NS, 'delete', 'pod', old.metadata.name, '--wait=true', '--timeout=60s');
  const [fresh] = await eventually('a new agent pod Ready', () => {
    const pods = podsOf('agent');
    return pods.length === 1 && pods[0].metadata.uid !== old.metadata.uid && ready(pods[0]) ? pods : null;
  }, 90000);
  const failed = await eventually('the session Failed', () => {
    const s = session('on-old-pod').status;
    return s?.phase === 'Failed' ? s : null;
  }, 60000);
  console.log(`the session on the deleted agent pod: ${failed.reason ?? ''} ${failed.message}`);
  // Either the agent's last word (it stops its instances on SIGTERM and says why) or, when that
  // push was missed, the operator's finding that the pod is gone.
  assert.ok(failed.message.includes(old.metadata.name), `the message names the server: ${failed.message}`);
  assert.match(failed.message, /was deleted|shut down/);

  apply('on-new-pod');
  const status = await running('on-new-pod');
  assert.equal(status.server, fresh.metadata.name);
  const page = await watch(status);
  await page.close();
});

test('restarting the apiserver (down for three lease durations): the operators recover and the next session runs', async (t) => {
  cleanUp(t);
  const counts = () => Object.fromEntries(podsOf('operator').map((p) => [p.metadata.name, restarts(p)]));
  const beforeRestart = counts();
  apply('before-restart');
  const live1 = await running('before-restart');
  const page = await watch(live1);
  execFileSync(process.env.CLUSTER_SH, ['restart-apiserver', process.env.CLUSTER_DIR, String(3 * LEASE_SECONDS)], { stdio: 'inherit' });
  // The stream never depended on the apiserver.
  await stillStreaming(page);
  await page.close();
  apply('after-restart');
  const started = Date.now();
  const status = await running('after-restart', NS, 120000);
  console.log(`apiserver back -> next session Running: ${Date.now() - started} ms; operator restarts before ${JSON.stringify(beforeRestart)}, after ${JSON.stringify(counts())}`);
  assert.equal(session('before-restart').status.phase, 'Running', 'the live session survived');
  await eventually('2 Ready operators again', () => podsOf('operator').filter(ready).length === 2, 60000);
  assert.ok(leaseHolder(), 'one leads');
  const page2 = await watch(status);
  await page2.close();
});

test('deleting a namespace with live sessions: the sessions go, their instances stop', async (t) => {
  cleanUp(t);
  kubectl('create', 'namespace', 'visitors');
  apply('visitor-a', {}, 'visitors');
  apply('visitor-b', {}, 'visitors');
  const a = await running('visitor-a', 'visitors');
  const b = await running('visitor-b', 'visitors');
  kubectl('delete', 'namespace', 'visitors', '--wait=false');
  await eventually('the namespace gone', () => {
    try {
      kubectl('get', 'namespace', 'visitors', '-o', 'name');
      return false;
    } catch {
      return true;
    }
  }, 60000);
  for (const s of [a, b]) assert.equal(cmd('status', s.instanceId).status, 'IDLE', `instance ${s.instanceId} stopped`);
});

test('upgrading the agent while a session runs: the session keeps streaming; the pod takes the new template when deleted', async (t) => {
  cleanUp(t);
  apply('during-upgrade');
  const status = await running('during-upgrade');
  const page = await watch(status);
  const [old] = podsOf('agent');
  // The x11 variant of the image, running xterm for each session on an Xorg of its own (the dummy
  // driver: this node has no GPU; on a GPU node `auto` picks nvidia).
  helm('upgrade', { agent: { image: { repository: 'openspace-agent-x11' }, instanceKind: 'x11', instanceCommand: 'xterm -bg white -fg black -e sh',
    x11: { server: 'xorg', driver: 'dummy' } } });
  const ds = json('-n', NS, 'get', 'daemonset', `${RELEASE}-agent`);
  assert.equal(ds.spec.updateStrategy.type, 'OnDelete');
  await sleep(3000);
  const [same] = podsOf('agent');
  assert.equal(same.metadata.uid, old.metadata.uid, 'the agent pod was not replaced under a live session');
  await stillStreaming(page);
  assert.equal(session('during-upgrade').status.phase, 'Running');
  await page.close();

  kubectl('-n', NS, 'delete', 'oss', 'during-upgrade', '--wait=true', '--timeout=30s');
  kubectl('-n', NS, 'delete', 'pod', old.metadata.name, '--wait=true', '--timeout=60s');
  const [fresh] = await eventually('the upgraded agent pod Ready', () => {
    const pods = podsOf('agent');
    return pods.length === 1 && pods[0].metadata.uid !== old.metadata.uid && ready(pods[0]) ? pods : null;
  }, 90000);
  assert.match(fresh.spec.containers[0].image, /openspace-agent-x11:test$/);
});

test('an x11 instance on Xorg inside the agent pod (non-root, read-only root): xterm streams and takes typing', async (t) => {
  cleanUp(t);
  apply('terminal', { resolution: { width: 960, height: 540 } });
  const status = await running('terminal');
  const [pod] = podsOf('agent');
  const logs = kubectl('-n', NS, 'logs', pod.metadata.name);
  assert.match(logs, /X\.Org X Server/, 'the instance draws on Xorg, not Xvfb');
  assert.match(logs, /Using config file: "\/tmp\/openspace-xorg-\d+\.conf"/, 'with the configuration the agent wrote');
  const page = await watch(status, 5, { width: 960, height: 540 });
  const { before, typed } = await typeIntoTerminal(page, 'echo openspace in a pod');
  assert.ok(typed > before + 300, `typed text shows up (dark pixels ${before} -> ${typed})`);
  await page.close();
  kubectl('-n', NS, 'delete', 'oss', 'terminal', '--wait=true', '--timeout=30s');
  await eventually('the instance stopped', () => cmd('status', status.instanceId).status === 'IDLE');
});
