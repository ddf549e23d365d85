// Glass-to-glass latency from the stamp (frame counter, wall-clock ms) the built-in renderer and
// openspace-x11-clock draw in the top-left corner; the page reads it from every presented frame.

export const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.round((s.length - 1) * p))]; };

/** Collects (now - stamp) for every presented frame for `ms` milliseconds. */
export function collectLatency(page, ms) {
  return page.evaluate((duration) => new Promise((resolve) => {
    const video = document.getElementById('remote-video');
    const canvas = new OffscreenCanvas(192, 16);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const samples = [];
    const started = performance.now();
    const read = () => {
      ctx.drawImage(video, 0, 0, 192, 16, 0, 0, 192, 16);
      const { data } = ctx.getImageData(0, 0, 192, 16);
      let value = 0;
      for (let i = 0; i < 24; i++) {
        const o = (12 * 192 + 8 * i + 4) * 4; // row 1 (the time), block centre
        value = (value << 1) | ((data[o] + data[o + 1] + data[o + 2]) / 3 > 128 ? 1 : 0);
      }
      return value >>> 0;
    };
    const onFrame = () => {
      const latency = (((Date.now() & 0xffffff) - read()) + 0x1000000) % 0x1000000;
      if (latency < 60000) samples.push(latency);
      if (performance.now() - started < duration) video.requestVideoFrameCallback(onFrame);
      else resolve(samples);
    };
    video.requestVideoFrameCallback(onFrame);
  }), ms);
}
