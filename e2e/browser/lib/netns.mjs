// Re-runs the calling benchmark in a network namespace of its own: loopback plus one veth pair
// with ADDRESS (198.18.0.0/15, the test ranges). GStreamer's ICE (libnice) never gathers loopback
// when another interface exists, so the webrtcbin reference needs an address that still stays on
// this machine; the namespace and its links go when the last process in it exits. Needs root.
import { spawnSync } from 'node:child_process';

export const ADDRESS = '198.18.77.1';

/** In the namespace already: returns. Otherwise runs this script there and exits with its status. */
export function inOwnNetns() {
  if (process.env.OPENSPACE_BENCH_NETNS === ADDRESS) return;
  const setup = [
    'set -e', 'ip link set lo up',
    'ip link add bench0 type veth peer name bench1',
    `ip addr add ${ADDRESS}/32 dev bench0`, 'ip link set bench0 up', 'ip link set bench1 up',
    'exec "$@"',
  ].join('; ');
  const run = spawnSync('unshare', ['--net', 'sh', '-c', setup, 'sh', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, OPENSPACE_BENCH_NETNS: ADDRESS },
  });
  if (run.error) throw new Error(`cannot make a network namespace (unshare, needs root): ${run.error.message}`);
  process.exit(run.status ?? 1);
}
