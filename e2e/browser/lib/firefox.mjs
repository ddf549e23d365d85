// Headless Firefox ESR (Debian's firefox-esr) through puppeteer-core's WebDriver BiDi: no
// geckodriver. Debian's Firefox has no H.264 for WebRTC (no OpenH264 plugin), so it answers VP8.
import puppeteer from 'puppeteer-core';

const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

export function launchFirefox() {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: {
      // WebRTC on loopback only: gather 127.0.0.1, no mDNS names, no STUN servers.
      'media.peerconnection.ice.loopback': true,
      'media.peerconnection.ice.obfuscate_host_addresses': false,
      'media.peerconnection.default_iceservers': '[]',
      'media.peerconnection.use_document_iceservers': true,
      // Muted video plays without a click.
      'media.autoplay.default': 0,
      'media.autoplay.blocking_policy': 0,
    },
  });
}

/** A new page of `width` x `height` CSS pixels. */
export async function newFirefoxPage(browser, { width = 960, height = 540 } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  return page;
}
