// The start page: asks the frontend for a session, shows its progress as the frontend pushes it
// (server-sent events from a Kubernetes watch), then the stream. The page holds no address, id or
// token: the stream is the frontend's own viewer page, whose signaling the frontend relays.
const $ = (id) => document.getElementById(id);
const page = { view: null };
window.page = page;

const TEXT = {
  none: 'Start an interactive OpenSpace session, streamed to this window.',
  Pending: 'Waiting for a rendering server…',
  Starting: 'Starting OpenSpace…',
  Stopping: 'Ending…',
};

function show(el, on) { el.hidden = !on; }

function message(text, kind = '') {
  $('message').textContent = text || '';
  $('message').className = kind;
  show($('message'), Boolean(text));
}

function render(view) {
  page.view = view;
  const status = $('status');
  status.dataset.state = view.state;
  const running = view.state === 'running';
  document.body.classList.toggle('streaming', running);
  show($('start'), view.state === 'none' || view.state === 'ended');
  show($('end'), view.state === 'waiting' || running);
  $('start').disabled = false;
  if (view.state === 'none') {
    status.textContent = TEXT.none;
  } else if (view.state === 'waiting') {
    status.textContent = TEXT[view.phase] || `${view.phase}…`;
    if (view.queue) message(`All rendering servers are busy: you are number ${view.queue} in the queue.`);
    else message('');
  } else if (view.state === 'ended') {
    status.textContent = view.phase === 'Failed' ? 'The session failed.' : 'The session ended.';
    message(view.message || '');
  }
  const stream = $('stream');
  if (running && stream.hidden) {
    message('');
    stream.src = '/frontend/#/streaming?id=0';
    show(stream, true);
  } else if (!running && !stream.hidden) {
    stream.src = 'about:blank';
    show(stream, false);
  }
}

async function start() {
  $('start').disabled = true;
  message('');
  const body = JSON.stringify({ width: Math.round(innerWidth * devicePixelRatio), height: Math.round(innerHeight * devicePixelRatio) });
  try {
    const res = await fetch('/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (!res.ok) {
      const answer = await res.json().catch(() => ({}));
      message(answer.message || `The session could not be started (${res.status}).`, answer.error === 'full' ? 'full' : '');
      $('start').disabled = false;
    }
  } catch (err) {
    message(`The session could not be started: ${err.message}`);
    $('start').disabled = false;
  }
}

async function end() {
  $('end').disabled = true;
  try {
    await fetch('/session', { method: 'DELETE' });
  } finally {
    $('end').disabled = false;
  }
}

function listen() {
  const events = new EventSource('/session/events');
  events.onmessage = (e) => render(JSON.parse(e.data));
  events.onerror = () => { $('status').textContent = 'Reconnecting…'; };
}

$('start').addEventListener('click', start);
$('end').addEventListener('click', end);
listen();
