// A test client that behaves like OpenSpace's original browser client (the streaming build's
// Web GUI, see shared/spec/protocols.md): it registers as 100 + N and never sends SESSION, reads
// only `REGISTER`, `OFFER_REQUEST`, text starting with `ERROR` and SDP/ICE JSON (anything else
// closes its socket, as the original does), adds a dummy canvas track, waits for 6 remote
// candidates before it answers and sends its own candidates only after that. It names no codec.

/**
 * Runs in the page (page.evaluate(originalClient, { signalingUrl, instance })). Progress is in
 * `window.original`: { errors, closed, answered, remoteCandidates, pc }; the picture in
 * <video id="remote-video">.
 */
export function originalClient({ signalingUrl, instance }) {
  const MIN_CANDIDATES = 6;
  const id = 100 + instance;
  const state = { errors: [], closed: null, answered: false, remoteCandidates: 0 };
  window.original = state;
  const video = document.createElement('video');
  Object.assign(video, { id: 'remote-video', autoplay: true, muted: true, playsInline: true });
  document.body.appendChild(video);

  const ws = new WebSocket(signalingUrl);
  const send = (msg) => ws.send(JSON.stringify(msg));
  let pc = null;
  const remote = [];
  const local = [];
  const fatal = (why) => { state.closed = why; ws.close(); };

  async function answerWhenReady() {
    if (state.answered || !pc || remote.length < MIN_CANDIDATES) return;
    state.answered = true;
    for (const c of remote) await pc.addIceCandidate(c);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    send({ type: 'SDP', caller_id: id, content: { sdp: { type: 'answer', sdp: answer.sdp } } });
    for (const ice of local) send({ type: 'ICE', caller_id: id, content: { ice } });
  }

  ws.onopen = () => send({ type: 'REGISTER', content: { content: null }, caller_id: id });
  ws.onclose = () => { state.closed ??= 'socket closed'; };
  ws.onmessage = async (event) => {
    const text = event.data;
    if (text === 'REGISTER' || text === 'OFFER_REQUEST') return;
    if (typeof text === 'string' && text.startsWith('ERROR')) { state.errors.push(text); return; }
    let msg;
    try { msg = JSON.parse(text); } catch { return fatal(`unreadable message: ${text}`); }
    if (msg.type === 'SDP' && msg.content?.sdp?.type === 'offer') {
      pc = new RTCPeerConnection();
      state.pc = pc;
      const canvas = document.createElement('canvas');
      canvas.width = 64;
      canvas.height = 64;
      canvas.getContext('2d').fillRect(0, 0, 64, 64);
      const dummy = canvas.captureStream(1);
      for (const track of dummy.getTracks()) pc.addTrack(track, dummy);
      pc.ontrack = (e) => { video.srcObject = e.streams[0]; };
      pc.onicecandidate = (e) => {
        if (!e.candidate?.candidate) return;
        const ice = { candidate: e.candidate.candidate, sdpMLineIndex: e.candidate.sdpMLineIndex, sdpMid: e.candidate.sdpMid };
        if (state.answered) send({ type: 'ICE', caller_id: id, content: { ice } });
        else local.push(ice);
      };
      await pc.setRemoteDescription(msg.content.sdp);
      await answerWhenReady();
    } else if (msg.type === 'ICE' && msg.content?.ice) {
      state.remoteCandidates += 1;
      remote.push(msg.content.ice);
      if (state.answered) await pc.addIceCandidate(msg.content.ice);
      else await answerWhenReady();
    } else {
      fatal(`fatal JSON: ${text}`);
    }
  };
}

/**
 * Runs in the page: `{ frames, codec }` of the original client's inbound video (frames decoded,
 * codec name such as "VP8"), from its peer connection's stats.
 */
export async function originalVideo() {
  const pc = window.original?.pc;
  if (!pc) return { frames: 0, codec: null };
  const report = await pc.getStats();
  for (const s of report.values()) {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      const codec = s.codecId ? report.get(s.codecId)?.mimeType?.replace(/^video\//i, '') : null;
      return { frames: s.framesDecoded ?? 0, codec: codec ?? null };
    }
  }
  return { frames: 0, codec: null };
}
