// kubectl and polling, shared by the end-to-end tests (e2e/flow, e2e/cluster).
import { execFileSync } from 'node:child_process';

/** Runs kubectl (KUBECONFIG from the environment); returns its trimmed stdout, throws on failure. */
export const kubectl = (...args) => execFileSync('kubectl', args, { encoding: 'utf8' }).trim();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 50 ms until it returns a truthy value (returned); throws after `timeout` ms. */
export async function eventually(what, fn, timeout = 30000) {
  const started = Date.now();
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() - started > timeout) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}
