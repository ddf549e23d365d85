// The streaming frontend with a warm pool, in headless Chromium (run by `make e2e` as
// `e2e/flow/run.sh --test e2e/flow/pool-flow.mjs`; not named *.test.mjs, so the main flow's
// `node --test e2e/flow/` does not install the chart a second time into its control plane):
// the chart's OpenSpacePool keeps two built-in instances warm, the frontend (`--pool`) names it
// on its sessions, a visitor's click claims a warm instance (status.start Warm, an Event
// Claimed), the stream decodes frames, and the pool refills.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, until } from '../browser/lib/browser.mjs';
import { NS, kubectl, eventually, bringUp, tearDown } from './lib/cluster.mjs';

let browser;
let frontendUrl;
const pool = (field) => kubectl('-n', NS, 'get', 'ospool', 'openspace', '-o', `jsonpath={.status.${field}}`);

before(async () => {
  ({ frontendUrl } = await bringUp({ maxSessions: 1, pool: 2 }));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await tearDown(Boolean(process.exitCode));
});

test('a click claims a warm instance and the stream plays', async () => {
  await eventually('the pool full', () => pool('ready') === '2');
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  await page.goto(frontendUrl);
  await page.locator('#start').waitFor({ state: 'visible' });
  await page.click('#start');
  await until(page, () => window.page.view?.state === 'running', null, { what: 'Running', timeout: 30000 });
  const frame = await (await page.$('#stream')).contentFrame();
  await frame.waitForFunction(() => window.viewer?.state === 'live' && window.viewer.framesDecoded >= 5, null, { timeout: 20000 });

  const sessions = JSON.parse(kubectl('-n', NS, 'get', 'oss', '-o', 'json')).items;
  assert.equal(sessions.length, 1);
  const [session] = sessions;
  assert.equal(session.spec.pool, 'openspace', 'the frontend named the pool');
  assert.equal(session.status.start, 'Warm', 'a warm instance was claimed');
  assert.equal(session.status.conditions.find((c) => c.type === 'Scheduled').reason, 'Claimed');
  await eventually('the Claimed event', () => kubectl('-n', NS, 'get', 'events', '-o', 'json').includes('"Claimed"'));
  await eventually('the pool refilled', () => pool('ready') === '2' && pool('claimed') === '1');

  await page.click('#end');
  await until(page, () => window.page.view?.state === 'none', null, { what: 'no session after End' });
  await eventually('the session gone', () => kubectl('-n', NS, 'get', 'oss', '-o', 'name') === '');
  await eventually('nothing claimed', () => pool('claimed') === '0');
  await context.close();
});
