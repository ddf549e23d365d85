// The local cluster of the end-to-end flow (inside e2e/flow/run.sh's control plane): the chart,
// two agents on loopback registered as Pods, the operator and the frontend as local processes
// under the chart's ServiceAccount identities. Shared by the test and the frontend benchmark.
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { binary } from '../../browser/lib/agent.mjs';
import { kubectl, eventually } from './kube.mjs';

export const NS = 'openspace';
export const RELEASE = 'openspace';
const work = mkdtempSync(path.join(tmpdir(), 'openspace-flow-'));
const processes = [];

export { kubectl, eventually };

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

/**
 * The chart installed with helm, two agents registered as Pods, the operator and the frontend
 * running as the chart's ServiceAccounts (static-token users of those names).
 */
export async function bringUp({ maxSessions = 1, idleTimeout = '60s', pool = 0 } = {}) {
  if (!process.env.KUBECONFIG || !process.env.EXTRA_TOKENS) throw new Error('run through e2e/flow/run.sh');
  // The whole chart with its defaults: every object must be accepted by a real apiserver. With no
  // controller-manager or kubelet here its Deployment and DaemonSet never run pods; the operator
  // and the agents run below as local processes, under the identities the chart gives them.
  // With `pool`, the chart's OpenSpacePool (named after the release) keeps that many warm.
  const poolValues = pool ? ['--set', 'pool.enabled=true', '--set', `pool.warm=${pool}`] : [];
  execFileSync('helm', ['install', RELEASE, 'charts/openspace', '-n', NS, '--create-namespace',
    '--set', 'frontend.enabled=true', ...poolValues], { stdio: 'inherit' });
  for (const kind of ['deployment/openspace-operator', 'daemonset/openspace-agent', 'clusterrole/openspace-operator',
    'role/openspace-operator', 'networkpolicy/openspace-agent', 'serviceaccount/openspace-operator']) {
    kubectl('-n', NS, 'get', kind, '-o', 'name');
  }
  const secret = JSON.parse(kubectl('-n', NS, 'get', 'secret', `${RELEASE}-command-token`, '-o', 'json'));
  const tokenFile = path.join(work, 'command-token');
  writeFileSync(tokenFile, Buffer.from(secret.data.token, 'base64').toString());

  const agents = [await agent('agent-a', '127.0.3.1', tokenFile), await agent('agent-b', '127.0.3.2', tokenFile)];

  // The operator with nothing but the ServiceAccount's rights.
  const kubeconfig = serviceAccountKubeconfig('operator');
  start('operator', binary('openspace-operator'), [
    '--agent-namespace', NS, '--lease-namespace', NS,
    '--agent-selector', `app.kubernetes.io/name=openspace,app.kubernetes.io/component=agent,app.kubernetes.io/instance=${RELEASE}`,
    '--command-token-file', tokenFile, '--metrics-listen', '127.0.0.1:0', '--identity', 'e2e',
  ], { KUBECONFIG: kubeconfig, RUST_LOG: 'info,kube=warn' });
  // The frontend likewise, allowing one live session.
  const frontendProcess = start('frontend', binary('openspace-frontend'), [
    '--listen', '127.0.0.1:0', '--namespace', NS, '--max-sessions', String(maxSessions), '--idle-timeout', idleTimeout,
    ...(pool ? ['--pool', RELEASE] : []),
  ], { KUBECONFIG: serviceAccountKubeconfig('frontend'), RUST_LOG: 'info,kube=warn' }, /listen_addr=/);
  await frontendProcess.seen;
  const frontendUrl = `http://${frontendProcess.entry.logs.join('\n').match(/listen_addr=(\S+)/)[1]}/`;
  return { agents, frontendUrl, operatorKubeconfig: kubeconfig };
}

/**
 * A kubeconfig for the chart's ServiceAccount `<release>-<account>`: the control plane's context
 * for the static-token user of that name (run.sh adds it), what a pod of that account would use.
 */
function serviceAccountKubeconfig(account) {
  const file = path.join(work, `${account}.kubeconfig`);
  const context = `system:serviceaccount:${NS}:${RELEASE}-${account}`;
  writeFileSync(file, kubectl('config', 'view', '--raw', '--minify', '--flatten', '--context', context));
  return file;
}

/** Stops every process started here (SIGTERM, waiting for each); prints their logs if asked. */
export async function tearDown(printLogs) {
  for (const { name, child, logs } of processes.reverse()) {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    if (printLogs) console.log(`---- ${name} ----\n${logs.join('\n')}`);
  }
  rmSync(work, { recursive: true, force: true });
}
