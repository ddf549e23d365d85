// Browser viewer: joins a streamed instance over WebRTC, forwards input on the
// "input" data channel and measures glass-to-glass latency from the frame stamp.
// Nothing (ids, tokens, addresses) is persisted: a reload starts from scratch.

const STAMP_W = 192;             // 24 blocks x 8 px
const STAMP_H = 16;              // 2 rows x 8 px
const STAMP_BITS = 24;
const WRAP = 2 ** 24;            // the stamp carries server ms modulo 2^24
const MAX_LATENCY_MS = 60000;
const MAX_STREAM_W = 1920;
const MAX_STREAM_H = 1080;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 8000;
const LIVE_RESET_MS = 10000;     // this long live forgives earlier failures
const DEFAULT_JITTER_BUFFER_TARGET = null; // the browser decides (bench/jitter.mjs: see BENCHMARKS.md)
const DISCONNECT_GRACE_MS = 4000;
const CONNECT_WATCHDOG_MS = 20000;
// A working candidate pair takes well under a second on any usable path; Chromium itself waits
// ~30 s before "failed". 8 s after the answer, the page says why, within 10 s of loading.
const ICE_DEADLINE_MS = 8000;
const PING_MS = 2000;
const STATS_MS = 500;
const RESIZE_DEBOUNCE_MS = 400;
const IDLE_MS = 2500;
const BUTTON_BIT = [1, 4, 2];    // PointerEvent.button -> PointerEvent.buttons bit

const $ = (id) => document.getElementById(id);
const video = $('remote-video');
const ui = {
  overlay: $('overlay'), overlayTitle: $('overlay-title'), overlayDetail: $('overlay-detail'),
  pillText: $('status-text'), badge: $('view-only'),
  statsToggle: $('stats-toggle'), statsPanel: $('stats'), statsList: $('stats-list'),
};

// Test hook and public state; kept current by the functions below.
const viewer = {
  state: 'connecting', callerId: null, framesDecoded: 0, lastStamp: null, latencyMs: null,
  stats: {}, videoWidth: 0, videoHeight: 0, controller: null, resizable: false,
  clockOffsetMs: null, errors: [], jitterBufferTarget: null,
  send: (obj) => sendInput(obj),
};
window.viewer = viewer;

let session = null;         // everything owned by one connection attempt
let backoffAttempt = 0;
let reconnectTimer = 0;
let countdownTimer = 0;
let fatal = false;          // set for errors that retrying cannot fix
const clock = { samples: [], offset: null };

// ---------------------------------------------------------------- route ----

function parseRoute() {
  const hash = location.hash.replace(/^#/, '');
  const q = hash.indexOf('?');
  const params = new URLSearchParams(q >= 0 ? hash.slice(q + 1) : '');
  const rawId = (params.get('id') ?? '').trim();
  const id = /^\d+$/.test(rawId) ? Number(rawId) : NaN;
  return {
    id: Number.isSafeInteger(id) ? id : null,
    token: params.get('token') || null,
    // Optional codec wish (h264 or vp8): offered first. The agent offers every codec it can
    // encode and streams whichever this browser's answer picks.
    codec: params.get('codec') || null,
    stats: params.get('stats') === '1',
    // The receiver's jitterBufferTarget in ms (bench/jitter.mjs measures it); 'browser' leaves
    // the browser's own choice.
    jitterBufferTarget: jitterBufferTarget(params.get('jitterBufferTarget')),
  };
}

function jitterBufferTarget(value) {
  if (value === 'browser') return null;
  const ms = Number(value);
  return value !== null && value !== '' && Number.isFinite(ms) && ms >= 0 && ms <= 4000 ? ms : DEFAULT_JITTER_BUFFER_TARGET;
}

// ------------------------------------------------------------------- ui ----

function setState(state, text = state) {
  viewer.state = state;
  document.body.dataset.state = state;
  ui.pillText.textContent = text;
  ui.overlayDetail.textContent = text;
}

function showOverlay(title = 'Waiting for the stream', isError = false) {
  ui.overlayTitle.textContent = title;
  ui.overlay.classList.toggle('error', isError);
  ui.overlay.classList.remove('hidden');
}

const hideOverlay = () => ui.overlay.classList.add('hidden');

function recordError(message) {
  viewer.errors.push(message);
  if (viewer.errors.length > 50) viewer.errors.shift();
  console.warn('[viewer]', message);
}

function setRole(controller) {
  viewer.controller = controller;
  ui.badge.hidden = controller !== false;
  document.body.classList.toggle('controller', controller === true);
}

let idleTimer = 0;
function markActivity() {
  document.body.classList.remove('idle');
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => document.body.classList.add('idle'), IDLE_MS);
}

function setStatsOpen(open) {
  ui.statsPanel.hidden = !open;
  ui.statsToggle.setAttribute('aria-pressed', String(open));
  if (open) renderStats();
}

const STAT_ROWS = [
  ['Frame rate', (s) => fmt(s.fps, 1, ' fps')],
  ['Bitrate', (s) => fmt(s.bitrateMbps, 2, ' Mbit/s')],
  ['Latency', (s) => fmt(s.latencyMs, 0, ' ms')],
  ['Round trip', (s) => fmt(s.rttMs, 0, ' ms')],
  ['Decode', (s) => fmt(s.decodeMs, 1, ' ms')],
  ['Resolution', (s) => (s.width ? `${s.width}\u00d7${s.height}` : '\u2014')],
  ['Codec', (s) => s.codec ?? '\u2014'],
  ['Dropped', (s) => fmt(s.framesDropped, 0, '')],
  ['Lost packets', (s) => fmt(s.packetsLost, 0, '')],
  ['Route', (s) => s.route ?? '\u2014'],
];

const fmt = (value, digits, unit) => (Number.isFinite(value) ? `${value.toFixed(digits)}${unit}` : '\u2014');

function renderStats() {
  if (ui.statsPanel.hidden) return;
  if (!ui.statsList.childElementCount) {
    for (const [label] of STAT_ROWS) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      ui.statsList.append(dt, document.createElement('dd'));
    }
  }
  const values = ui.statsList.querySelectorAll('dd');
  STAT_ROWS.forEach(([, get], i) => { values[i].textContent = get(viewer.stats); });
}

// ------------------------------------------------------------ signaling ----

function signalingUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/signaling`;
}

function connect(route) {
  reconnectTimer = 0;
  clock.samples = [];
  clock.offset = viewer.clockOffsetMs = null;
  viewer.latencyMs = null;
  viewer.lastStamp = null;
  viewer.framesDecoded = 0;
  viewer.stats = {};
  // A fresh caller id per attempt so a half-closed previous registration on the
  // server can never collide with this one.
  const callerId = 1_000_000 + Math.floor(Math.random() * (2_000_000_000 - 1_000_000 + 1));
  viewer.callerId = callerId;
  setState('connecting');
  showOverlay();

  let ws;
  try { ws = new WebSocket(signalingUrl()); } catch (err) { retry(route, `signaling: ${err.message}`); return; }
  const s = {
    route, ws, callerId,
    pc: null, dc: null,
    iceServers: [],
    pendingIce: [],            // remote candidates that arrived before the offer
    localIce: [],              // local candidates gathered before the answer was sent
    answerSent: false,
    chain: Promise.resolve(),  // serialises SDP/ICE handling in arrival order
    timers: new Set(),
    history: [],               // recent inbound-rtp samples for per-second rates
    live: false,
    relayGathered: false,      // a relay candidate of ours: the TURN relay answered
    relayErrors: [],           // icecandidateerror events from TURN servers
  };
  session = s;
  // errors: 'json' asks for {"type":"ERROR"} errors (the agent's default is the original's text).
  ws.onopen = () => wsSend(s, { type: 'REGISTER', caller_id: callerId, errors: 'json' });
  ws.onmessage = (e) => { if (session === s) onSignal(s, e.data); };
  ws.onclose = () => { if (session === s) retry(route, 'signaling connection closed'); };
  ws.onerror = () => {};     // a close event always follows; handled there
}

const wsSend = (s, msg) => s.ws.readyState === WebSocket.OPEN && s.ws.send(JSON.stringify(msg));

function onSignal(s, data) {
  if (typeof data !== 'string') return;
  const text = data.trim();
  if (text === 'REGISTER') {
    const msg = { type: 'SESSION', caller_id: s.callerId, content: s.route.id };
    if (s.route.token) msg.token = s.route.token;
    if (s.route.codec) msg.codec = s.route.codec;
    wsSend(s, msg);
    setState('waiting for instance');
    return;
  }
  if (text === 'SESSION_OK') {
    setState('waiting for instance');   // paired; the offer comes next
    return;
  }
  if (text.startsWith('ERROR')) {       // the original's text form, should the agent use it
    onServerError(s, text.replace(/^ERROR:?\s*/, '') || 'unknown error');
    return;
  }
  let msg;
  try { msg = JSON.parse(text); } catch { msg = null; }
  if (!msg || typeof msg !== 'object') {
    console.info('[signaling]', text);
    return;
  }
  switch (msg.type) {
    case 'ERROR': onServerError(s, String(msg.content ?? 'unknown error')); break;
    case 'CONFIG':
      if (Array.isArray(msg.content?.iceServers)) s.iceServers = msg.content.iceServers;
      break;
    case 'SDP': enqueue(s, () => onRemoteSdp(s, msg.content)); break;
    case 'ICE': enqueue(s, () => onRemoteIce(s, msg.content)); break;
    default: console.info('[signaling] ignored', msg);
  }
}

function onServerError(s, message) {
  recordError(message);
  if (/^forbidden/i.test(message)) fail(message);   // a retry cannot fix a bad token
  else retry(s.route, message);
}

function enqueue(s, task) {
  s.chain = s.chain
    .then(() => (session === s ? task() : undefined))
    .catch((err) => {
      if (session !== s) return;
      recordError(`negotiation failed: ${err?.message ?? err}`);
      retry(s.route, 'negotiation failed');
    });
}

// ----------------------------------------------------------------- peer ----

function createPeer(s) {
  const pc = new RTCPeerConnection({ iceServers: s.iceServers });
  pc.ontrack = (e) => {
    const target = s.route.jitterBufferTarget;
    if (target !== null && 'jitterBufferTarget' in e.receiver) e.receiver.jitterBufferTarget = target;
    viewer.jitterBufferTarget = e.receiver.jitterBufferTarget ?? null;
    attachStream(e.streams[0] ?? new MediaStream([e.track]));
  };
  pc.ondatachannel = (e) => { if (e.channel.label === 'input') setupChannel(s, e.channel); };
  pc.onicecandidate = (e) => {
    const c = e.candidate;
    if (!c || !c.candidate) return;     // end-of-candidates is implicit for the server
    if ((c.type ?? / typ (\S+)/.exec(c.candidate)?.[1]) === 'relay') s.relayGathered = true;
    const ice = { candidate: c.candidate, sdpMLineIndex: c.sdpMLineIndex, sdpMid: c.sdpMid };
    if (s.answerSent) sendLocalIce(s, ice);
    else s.localIce.push(ice);          // never let a candidate overtake the answer
  };
  pc.onconnectionstatechange = () => onPeerState(s, pc);
  // Only TURN failures matter to the diagnosis; STUN/host errors (e.g. 701 on an interface
  // without a route) are routine.
  pc.onicecandidateerror = (e) => {
    if (/^turns?:/i.test(e.url ?? '')) s.relayErrors.push({ code: e.errorCode, text: e.errorText, url: e.url });
  };
  return pc;
}

const usesRelay = (s) => s.iceServers.some((server) =>
  [].concat(server?.urls ?? []).some((url) => /^turns?:/i.test(String(url))));

// Why no candidate pair works, in words a person can act on: the relay said no (401/403 are
// TURN's "bad credentials" and "forbidden", RFC 8656 §6), the relay never answered, or, without
// a relay, the path to the rendering server's media address is closed.
function unreachableReason(s) {
  if (usesRelay(s) && !s.relayGathered) {
    if (s.relayErrors.some((e) => e.code === 401 || e.code === 403)) return 'the media relay refused the credentials';
    return 'cannot reach the media relay';
  }
  return 'the rendering server is not reachable';
}

function unreachable(s) {
  const reason = unreachableReason(s);
  recordError(reason);
  retry(s.route, reason);
}

const sendLocalIce = (s, ice) => wsSend(s, { type: 'ICE', caller_id: s.callerId, content: { ice } });

const sessionIdOf = (sdp) => /^o=\S+ (\S+)/m.exec(sdp)?.[1] ?? null;

function normaliseSdp(content) {
  const sdp = content?.sdp;
  if (sdp && typeof sdp === 'object') return sdp;
  if (typeof sdp === 'string') return { type: content.type ?? 'offer', sdp };
  return null;
}

async function onRemoteSdp(s, content) {
  const desc = normaliseSdp(content);
  if (!desc || desc.type !== 'offer') {
    console.info('[signaling] unexpected SDP', content);
    return;
  }
  const old = s.pc;
  // A different o= session id means the server restarted its peer connection
  // (new DTLS identity): that cannot be renegotiated onto the old one.
  const restarted = old?.remoteDescription && sessionIdOf(old.remoteDescription.sdp) !== sessionIdOf(desc.sdp);
  if (!old || restarted || old.signalingState === 'closed' || ['closed', 'failed'].includes(old.connectionState)) {
    if (old) closePeer(s);
    s.answerSent = false;
    s.connected = s.live = false;
    s.history = [];
    s.pc = createPeer(s);
    // ICE can sit in "checking" for a long time before Chromium gives up.
    clearTimeout(s.watchdog);
    s.watchdog = later(s, () => { if (session === s && !s.connected) retry(s.route, 'connection timed out'); }, CONNECT_WATCHDOG_MS);
  }
  if (!s.live) setState('negotiating');
  const pc = s.pc;
  await pc.setRemoteDescription(desc);
  for (const init of s.pendingIce.splice(0)) await addIce(pc, init);
  await pc.setLocalDescription(await pc.createAnswer());
  wsSend(s, { type: 'SDP', caller_id: s.callerId, content: { sdp: { type: 'answer', sdp: pc.localDescription.sdp } } });
  s.answerSent = true;
  clearTimeout(s.iceDeadline);
  s.iceDeadline = later(s, () => {
    if (session === s && s.pc === pc && !['connected', 'completed'].includes(pc.iceConnectionState)) unreachable(s);
  }, ICE_DEADLINE_MS);
  for (const ice of s.localIce.splice(0)) sendLocalIce(s, ice);
}

async function onRemoteIce(s, content) {
  const ice = content?.ice;
  if (!ice || !ice.candidate) return;   // "" / null = end-of-candidates
  const init = {
    candidate: ice.candidate,
    sdpMid: ice.sdpMid ?? null,
    // addIceCandidate rejects when both are null; we have one video m-line first.
    sdpMLineIndex: ice.sdpMLineIndex ?? (ice.sdpMid == null ? 0 : null),
  };
  if (!s.pc || !s.pc.remoteDescription) s.pendingIce.push(init);
  else await addIce(s.pc, init);
}

async function addIce(pc, init) {
  try { await pc.addIceCandidate(init); } catch (err) { console.warn('[viewer] bad ICE candidate', init.candidate, err); }
}

function onPeerState(s, pc) {
  if (session !== s || s.pc !== pc) return;
  const state = pc.connectionState;
  clearTimeout(s.disconnectTimer);
  if (state === 'connected') s.connected = true;
  if (state === 'failed' && !s.connected) {
    unreachable(s);
  } else if (state === 'failed' || state === 'closed') {
    retry(s.route, `connection ${state}`);
  } else if (state === 'disconnected') {
    // ICE often recovers on its own from short outages; give it a moment.
    s.disconnectTimer = later(s, () => {
      if (pc.connectionState === 'disconnected') retry(s.route, 'connection lost');
    }, DISCONNECT_GRACE_MS);
  }
}

function attachStream(stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  video.play().catch(() => {});       // muted autoplay is allowed; ignore interruptions
}

function markLive(s) {
  if (!s || s.live) return;
  s.live = true;
  setState('live');
  hideOverlay();
  later(s, () => { backoffAttempt = 0; }, LIVE_RESET_MS);
}

// Timers owned by a session, cleared together in teardown().
function later(s, fn, ms) {
  const id = setTimeout(() => { s.timers.delete(id); fn(); }, ms);
  s.timers.add(id);
  return id;
}

function every(s, fn, ms) {
  const id = setInterval(fn, ms);
  s.timers.add(id);
  return id;
}

// ------------------------------------------------------------ lifecycle ----

function teardown() {
  releaseInput();                       // while the channel may still carry the key-ups
  const s = session;
  session = null;
  if (!s) return;
  for (const id of s.timers) { clearTimeout(id); clearInterval(id); }
  closePeer(s);
  s.ws.onopen = s.ws.onmessage = s.ws.onclose = null;
  if (s.ws.readyState <= WebSocket.OPEN) s.ws.close();
  video.srcObject = null;
  viewer.videoWidth = viewer.videoHeight = 0;
  viewer.resizable = false;
}

// Detach handlers first so closing does not feed events back into retry().
function closePeer(s) {
  if (s.dc) {
    s.dc.onopen = s.dc.onmessage = s.dc.onclose = null;
    try { s.dc.close(); } catch { /* already closed */ }
    s.dc = null;
  }
  if (s.pc) {
    s.pc.ontrack = s.pc.ondatachannel = s.pc.onicecandidate = s.pc.onconnectionstatechange = null;
    s.pc.onicecandidateerror = null;
    s.pc.close();
    s.pc = null;
  }
  setRole(null);
}

function retry(route, reason) {
  if (fatal || reconnectTimer) return;  // several failure signals can race here
  teardown();
  const delay = Math.min(BACKOFF_MIN_MS * 2 ** backoffAttempt, BACKOFF_MAX_MS);
  backoffAttempt += 1;
  const due = performance.now() + delay;
  const tick = () => {
    const left = Math.max(1, Math.ceil((due - performance.now()) / 1000));
    setState('reconnecting', `${reason} \u2014 reconnecting in ${left}s`);
  };
  tick();
  showOverlay();
  countdownTimer = setInterval(tick, 250);
  reconnectTimer = setTimeout(() => {
    clearInterval(countdownTimer);
    connect(route);
  }, delay);
}

function fail(message) {
  fatal = true;
  clearTimeout(reconnectTimer);
  clearInterval(countdownTimer);
  teardown();
  setState('error', message);
  showOverlay('Unable to show the stream', true);
}

// ---------------------------------------------------------- data channel ----

function setupChannel(s, dc) {
  if (s.dc && s.dc !== dc) s.dc.close();
  s.dc = dc;
  const onOpen = () => {
    if (s.pingTimer) { clearInterval(s.pingTimer); s.timers.delete(s.pingTimer); }
    sendPing();
    s.pingTimer = every(s, sendPing, PING_MS);
  };
  dc.onopen = onOpen;
  dc.onmessage = (e) => { if (session === s) onChannelMessage(s, e.data); };
  dc.onclose = () => { if (s.dc === dc) s.dc = null; };
  if (dc.readyState === 'open') onOpen();
}

function sendInput(obj) {
  const dc = session?.dc;
  if (!dc || dc.readyState !== 'open') return false;
  try { dc.send(JSON.stringify(obj)); return true; } catch { return false; }
}

const sendPing = () => sendInput({ type: 'ping', t: performance.now() });

function onChannelMessage(s, data) {
  let msg;
  try { msg = JSON.parse(data); } catch { return; }
  switch (msg?.type) {
    case 'hello':
      setRole(msg.controller === true);
      viewer.resizable = msg.resizable === true;
      s.streamSize = { width: msg.width, height: msg.height };
      requestResize(s);
      break;
    case 'pong': onPong(msg); break;
    case 'resolution': s.streamSize = { width: msg.width, height: msg.height }; break;
    default: console.info('[input] ignored', msg);
  }
}

// NTP-style offset; the sample with the smallest RTT has the tightest bound.
function onPong(msg) {
  if (!Number.isFinite(msg.t) || !Number.isFinite(msg.server_ms)) return;
  const rtt = performance.now() - msg.t;
  if (rtt < 0 || rtt > 30000) return;
  clock.samples.push({ rtt, offset: msg.server_ms - (Date.now() - rtt / 2) });
  if (clock.samples.length > 10) clock.samples.shift();
  const best = clock.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
  clock.offset = viewer.clockOffsetMs = best.offset;
}

// --------------------------------------------------------------- resize ----

function desiredSize() {
  const dpr = window.devicePixelRatio || 1;
  const w = window.innerWidth * dpr;
  const h = window.innerHeight * dpr;
  // Scale uniformly so the stream keeps the window's aspect ratio (no letterbox).
  const scale = Math.min(1, MAX_STREAM_W / w, MAX_STREAM_H / h);
  const even = (v) => Math.max(16, Math.floor((v * scale) / 2) * 2);
  return { width: even(w), height: even(h) };
}

function requestResize(s) {
  if (!s || session !== s || !viewer.resizable) return;
  const want = desiredSize();
  const target = s.requestedSize ?? s.streamSize;
  if (target && target.width === want.width && target.height === want.height) return;
  if (sendInput({ type: 'resize', ...want })) s.requestedSize = want;
}

let resizeTimer = 0;
function onWindowResize() {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => requestResize(session), RESIZE_DEBOUNCE_MS);
}

// ---------------------------------------------------------------- input ----

const drag = { active: false, pointerId: null, button: 0, dx: 0, dy: 0, last: null, raf: 0 };
const heldKeys = new Map();  // code -> key, so focus loss can release them

function controlling() {
  return viewer.controller === true && session?.dc?.readyState === 'open';
}

// Map client coordinates to the video's content box (object-fit: contain).
function contentPoint(e) {
  const r = video.getBoundingClientRect();
  const vw = video.videoWidth || r.width || 1;
  const vh = video.videoHeight || r.height || 1;
  const scale = Math.min(r.width / vw, r.height / vh) || 1;
  const w = vw * scale;
  const h = vh * scale;
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return {
    x: clamp((e.clientX - r.left - (r.width - w) / 2) / w),
    y: clamp((e.clientY - r.top - (r.height - h) / 2) / h),
  };
}

const modifiers = (e) => ({ shift: e.shiftKey, ctrl: e.ctrlKey, alt: e.altKey, meta: e.metaKey });

function pointerMessage(action, e, button, dx = 0, dy = 0) {
  return { type: 'pointer', action, ...contentPoint(e), dx, dy, button, buttons: e.buttons, ...modifiers(e) };
}

const primaryButton = (buttons) => (buttons & 1 ? 0 : buttons & 4 ? 1 : buttons & 2 ? 2 : drag.button);

function onPointerDown(e) {
  if (!controlling() || e.button > 2) return;
  e.preventDefault();                   // no text selection / middle-click autoscroll
  video.focus({ preventScroll: true });
  if (!drag.active) {
    video.setPointerCapture(e.pointerId);
    Object.assign(drag, { active: true, pointerId: e.pointerId, button: e.button, dx: 0, dy: 0, last: null });
    document.body.classList.add('dragging');
  }
  sendInput(pointerMessage('down', e, e.button));
}

function onPointerMove(e) {
  if (!drag.active || e.pointerId !== drag.pointerId) return;
  drag.dx += e.movementX;
  drag.dy += e.movementY;
  drag.last = e;
  if (e.button >= 0 && e.button <= 2) {
    // A second button pressed/released mid-drag arrives as a "chorded" move.
    flushMove();
    const pressed = (e.buttons & BUTTON_BIT[e.button]) !== 0;
    sendInput(pointerMessage(pressed ? 'down' : 'up', e, e.button));
    return;
  }
  if (!drag.raf) drag.raf = requestAnimationFrame(flushMove);
}

// One move per animation frame with the accumulated movement.
function flushMove() {
  cancelAnimationFrame(drag.raf);
  drag.raf = 0;
  const e = drag.last;
  if (!e) return;
  if (drag.dx || drag.dy) sendInput(pointerMessage('move', e, primaryButton(e.buttons), drag.dx, drag.dy));
  drag.dx = drag.dy = 0;
  drag.last = null;
}

function onPointerEnd(e) {
  if (!drag.active || e.pointerId !== drag.pointerId) return;
  flushMove();
  // pointercancel / lost capture also end the drag: tell the server so no button sticks.
  sendInput(pointerMessage('up', e, e.button >= 0 && e.button <= 2 ? e.button : drag.button));
  drag.active = false;
  document.body.classList.remove('dragging');
}

function onWheel(e) {
  e.preventDefault();
  if (!controlling()) return;
  sendInput({ type: 'wheel', dx: e.deltaX, dy: e.deltaY, mode: e.deltaMode, ...contentPoint(e) });
}

function isBrowserEssential(e) {
  if (e.code === 'F5' || e.code === 'F11' || e.code === 'F12') return true;
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.code === 'KeyR') return true;
  return mod && e.shiftKey && (e.code === 'KeyI' || e.code === 'KeyJ');  // devtools
}

function onKey(e) {
  if (!controlling() || isBrowserEssential(e)) return;
  e.preventDefault();
  const action = e.type === 'keydown' ? 'down' : 'up';
  if (action === 'down') heldKeys.set(e.code, e.key);
  else heldKeys.delete(e.code);
  sendInput({ type: 'key', action, code: e.code, key: e.key, ...modifiers(e), repeat: e.repeat });
}

// Focus loss swallows key-ups and pointer-ups; release them so nothing sticks.
function releaseInput() {
  for (const [code, key] of heldKeys) {
    sendInput({ type: 'key', action: 'up', code, key, shift: false, ctrl: false, alt: false, meta: false, repeat: false });
  }
  heldKeys.clear();
  if (drag.active) {
    flushMove();
    drag.active = false;
    document.body.classList.remove('dragging');
  }
}

// ---------------------------------------------------------------- stamp ----

const stampCanvas = document.createElement('canvas');
stampCanvas.width = STAMP_W;
stampCanvas.height = STAMP_H;
const stampCtx = stampCanvas.getContext('2d', { willReadFrequently: true });

function readStamp() {
  if (video.videoWidth < STAMP_W || video.videoHeight < 24) return null;
  stampCtx.drawImage(video, 0, 0, STAMP_W, STAMP_H, 0, 0, STAMP_W, STAMP_H);
  const px = stampCtx.getImageData(0, 0, STAMP_W, STAMP_H).data;
  const row = (r) => {
    let value = 0;
    for (let i = 0; i < STAMP_BITS; i++) value = value * 2 + (blockLuma(px, 8 * i + 4, 8 * r + 4) > 128 ? 1 : 0);
    return value;
  };
  return { frame: row(0), ms: row(1) };
}

// Mean luma of the 4x4 pixels around a block centre: the block interior is far
// from the edges where codec ringing and chroma subsampling blur the value.
function blockLuma(px, cx, cy) {
  let sum = 0;
  for (let y = cy - 2; y < cy + 2; y++) {
    for (let x = cx - 2; x < cx + 2; x++) {
      const o = (y * STAMP_W + x) * 4;
      sum += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
    }
  }
  return sum / 16;
}

function updateLatency(stampMs) {
  const serverNow = Math.round(Date.now() + (clock.offset ?? 0));
  let latency = (((serverNow - stampMs) % WRAP) + WRAP) % WRAP;
  // Within 1 s "in the future" is clock-estimate error, not a 4.6-hour delay.
  if (latency > WRAP - 1000) latency = 0;
  if (latency > MAX_LATENCY_MS) return;
  viewer.latencyMs = viewer.latencyMs == null ? latency : viewer.latencyMs + 0.1 * (latency - viewer.latencyMs);
}

const hasFrameCallback = 'requestVideoFrameCallback' in HTMLVideoElement.prototype;
let frameHandle = 0;

function armFrameCallback() {
  if (hasFrameCallback) {
    if (frameHandle) video.cancelVideoFrameCallback(frameHandle);
    frameHandle = video.requestVideoFrameCallback(onVideoFrame);
  } else {
    cancelAnimationFrame(frameHandle);
    frameHandle = requestAnimationFrame(onVideoFrame);
  }
}

function onVideoFrame() {
  frameHandle = 0;
  armFrameCallback();
  if (!session || video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || !video.videoWidth) return;
  markLive(session);
  viewer.videoWidth = video.videoWidth;
  viewer.videoHeight = video.videoHeight;
  let stamp = null;
  try { stamp = readStamp(); } catch (err) { console.warn('[viewer] stamp read failed', err); }
  const prev = viewer.lastStamp;
  // The rAF fallback sees the same frame many times; only new stamps count.
  if (stamp && (!prev || prev.frame !== stamp.frame || prev.ms !== stamp.ms)) {
    viewer.lastStamp = stamp;
    updateLatency(stamp.ms);
  }
}

// ---------------------------------------------------------------- stats ----

async function pollStats() {
  const s = session;
  if (!s?.pc) return;
  let report;
  try { report = await s.pc.getStats(); } catch { return; }
  if (session !== s) return;

  let inbound = null;
  let pair = null;
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && (r.kind ?? r.mediaType) === 'video') inbound = r;
    else if (r.type === 'transport' && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId) ?? pair;
  });
  if (!pair) {
    report.forEach((r) => {
      if (r.type === 'candidate-pair' && r.state === 'succeeded' && (r.nominated || r.selected)) pair = r;
    });
  }

  const st = viewer.stats;
  if (Number.isFinite(pair?.currentRoundTripTime)) st.rttMs = pair.currentRoundTripTime * 1000;
  // Which way the media flows: direct (host, srflx, prflx) or through the TURN relay, and over
  // which transport the page reaches the relay (udp, tcp, tls).
  const local = pair && report.get(pair.localCandidateId);
  const remote = pair && report.get(pair.remoteCandidateId);
  if (local && remote) {
    st.localCandidate = local.candidateType;
    st.relayProtocol = local.relayProtocol ?? null;
    st.remoteCandidate = remote.candidateType;
    st.route = `${st.localCandidate}${st.relayProtocol ? ` (${st.relayProtocol})` : ''} \u2192 ${st.remoteCandidate}`;
  }
  if (inbound) {
    const sample = {
      t: inbound.timestamp,
      frames: inbound.framesDecoded ?? 0,
      bytes: inbound.bytesReceived ?? 0,
      decode: inbound.totalDecodeTime ?? 0,
    };
    // Rates over the last ~second: steadier than 500 ms deltas.
    s.history.push(sample);
    while (s.history.length > 2 && sample.t - s.history[1].t >= 1000) s.history.shift();
    const base = s.history[0];
    const dt = (sample.t - base.t) / 1000;
    if (dt > 0) {
      const frames = sample.frames - base.frames;
      st.fps = frames / dt;
      st.bitrateMbps = ((sample.bytes - base.bytes) * 8) / dt / 1e6;
      if (frames > 0 && inbound.totalDecodeTime != null) st.decodeMs = ((sample.decode - base.decode) * 1000) / frames;
    }
    st.framesDecoded = viewer.framesDecoded = sample.frames;
    // Backup for when frame callbacks are throttled (e.g. a hidden tab).
    if (sample.frames > 0 && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) markLive(s);
    st.width = inbound.frameWidth ?? video.videoWidth;
    st.height = inbound.frameHeight ?? video.videoHeight;
    st.resolution = st.width ? `${st.width}x${st.height}` : null;
    st.framesDropped = inbound.framesDropped ?? 0;
    st.packetsLost = inbound.packetsLost ?? 0;
    const codec = inbound.codecId ? report.get(inbound.codecId) : null;
    if (codec?.mimeType) st.codec = codec.mimeType.replace(/^video\//i, '');
  }
  st.latencyMs = viewer.latencyMs;
  renderStats();
}

// ----------------------------------------------------------------- boot ----

function boot() {
  const route = parseRoute();
  setStatsOpen(route.stats);
  ui.statsToggle.addEventListener('click', () => {
    setStatsOpen(ui.statsPanel.hidden);
    ui.statsToggle.blur();              // keep Space/Enter going to the stream
  });

  video.addEventListener('pointerdown', onPointerDown);
  video.addEventListener('pointermove', onPointerMove);
  video.addEventListener('pointerup', onPointerEnd);
  video.addEventListener('pointercancel', onPointerEnd);
  video.addEventListener('lostpointercapture', onPointerEnd);
  video.addEventListener('wheel', onWheel, { passive: false });
  video.addEventListener('contextmenu', (e) => e.preventDefault());
  video.addEventListener('loadeddata', armFrameCallback);
  video.addEventListener('resize', () => {
    viewer.videoWidth = video.videoWidth;
    viewer.videoHeight = video.videoHeight;
  });
  window.addEventListener('keydown', onKey);
  window.addEventListener('keyup', onKey);
  window.addEventListener('blur', releaseInput);
  window.addEventListener('resize', onWindowResize);
  window.addEventListener('pointermove', markActivity, { passive: true });
  window.addEventListener('pointerdown', markActivity, { passive: true });
  // The hash carries the instance id: a different one means a different session.
  window.addEventListener('hashchange', () => location.reload());
  // Close promptly so the agent frees the session instead of waiting for a timeout.
  window.addEventListener('pagehide', () => { fatal = true; teardown(); });
  window.addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });
  markActivity();

  if (route.id === null) {
    const message = 'Missing or invalid instance id \u2014 open this page as #/streaming?id=N';
    recordError(message);
    fail(message);
    return;
  }
  armFrameCallback();
  setInterval(pollStats, STATS_MS);
  connect(route);
}

boot();
