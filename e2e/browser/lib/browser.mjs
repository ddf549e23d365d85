// Headless Debian Chromium through playwright-core, and helpers that read the viewer page (they
// use only page.evaluate, so they work on puppeteer's Firefox pages too; see firefox.mjs).
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** `executablePath`: another way to run it (e2e/turn: inside a network namespace). */
export async function launch({ executablePath = CHROMIUM } = {}) {
  return chromium.launch({
    executablePath,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic',
      // WebRTC on loopback only: gather 127.0.0.1 and don't hide addresses behind mDNS names.
      '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
}

/** Polls `fn` in the page until it returns a truthy value; returns it. */
export async function until(page, fn, arg, { timeout = 20000, what = 'condition' } = {}) {
  const started = Date.now();
  for (;;) {
    const value = await page.evaluate(fn, arg);
    if (value) return value;
    if (Date.now() - started > timeout) {
      const state = await page.evaluate(() => JSON.stringify({ state: window.viewer?.state, errors: window.viewer?.errors, frames: window.viewer?.framesDecoded }));
      throw new Error(`timed out waiting for ${what}; viewer: ${state}`);
    }
    await sleep(100); // not page.waitForTimeout: puppeteer's pages (Firefox) have none
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const live = (page, minFrames = 10) =>
  until(page, (n) => window.viewer?.state === 'live' && window.viewer.framesDecoded >= n, minFrames, { what: `${minFrames} decoded frames` });

/** Luma of the decoded picture, downscaled to 64x36, from the <video> element. */
export function grab(page) {
  return page.evaluate(() => {
    const video = document.getElementById('remote-video');
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 36;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, 64, 36);
    const { data } = ctx.getImageData(0, 0, 64, 36);
    const luma = [];
    for (let i = 0; i < data.length; i += 4) luma.push(0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]);
    return luma;
  });
}

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
export const variance = (xs) => { const m = mean(xs); return mean(xs.map((x) => (x - m) ** 2)); };
/** Mean absolute difference of two grabs, skipping the top rows where the stamp changes every frame. */
export const difference = (a, b) => mean(a.map((x, i) => (i < 64 * 3 ? 0 : Math.abs(x - b[i]))));

/** Dark pixels (luma < 100) in the top `rows` rows of the decoded picture, at full resolution. */
export function darkPixels(page, rows) {
  return page.evaluate((rows) => {
    const video = document.getElementById('remote-video');
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(video, 0, 0);
    const { data } = ctx.getImageData(0, 0, canvas.width, rows);
    let dark = 0;
    for (let i = 0; i < data.length; i += 4) if (0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2] < 100) dark++;
    return dark;
  }, rows);
}

/**
 * How much a mouse drag across the middle of the picture changes it, against how much 400 ms of
 * time alone does (mean absolute luma differences, see `difference`): `{ idle, dragged }`.
 */
export async function dragEffect(page) {
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
  return { idle, dragged: difference(b, await grab(page)) };
}

/**
 * Clicks into the picture (bottom right), types `text` and Enter, and waits up to `timeout` ms for
 * at least 300 more dark pixels in the top 60 rows (a terminal's new lines): `{ before, typed }`.
 */
export async function typeIntoTerminal(page, text, timeout = 5000) {
  const before = await darkPixels(page, 60);
  const box = await page.locator('#remote-video').boundingBox();
  await page.locator('#remote-video').click({ position: { x: box.width - 60, y: box.height - 40 } });
  await page.keyboard.type(text, { delay: 15 });
  await page.keyboard.press('Enter');
  let typed = before;
  for (let waited = 0; waited < timeout && typed < before + 300; waited += 100) {
    await page.waitForTimeout(100);
    typed = await darkPixels(page, 60);
  }
  return { before, typed };
}
