// peerchat in a browser: PROTOCOL.md §4 events (version 3), one JSON object per
// WebSocket text frame. It mirrors the terminal client (client/src/peerchat_client):
// the tags and wording of console.py and notices.py, the commands of commands.py,
// completion.py's Tab, and the resume bookkeeping of ledger.py and link.py (§8).
// Text from peers reaches the page only as text nodes (textContent), never as HTML.
'use strict';
(() => { // one scope for the whole file (its body is not indented)
const HOST = location.host;
const URL = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${HOST}/ws`;
const KEEPALIVE_MS = 15000; // link.py: ping after 15 s of quiet; dead after 15 s more
const HANDSHAKE_MS = 10000; // session.py: connecting and the welcome
const RETRY_FIRST_MS = 500, RETRY_CAP_MS = 10000;
const QUEUE_LINES = 100, UNACKED_LINES = 10000; // ledger.py
const MAX_LINES = 2000, MAX_RECALL = 500, MAX_NAMES = 200; // memory stays bounded
// link.py RECONNECT_AFTER: a bye worth coming back from; any other code is final.
const RECONNECT_AFTER = new Set(['shutdown', 'ping_timeout', 'internal',
  'too_many_connections', 'slow_consumer']);
const PASSWORD_CODES = new Set(['bad_password', 'auth_required', 'auth_timeout']);
const NICK_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const NICK_RULE = "up to 32 letters A-Z, digits, '_', '-' and '.', starting with a letter, digit or _";
// §3.1: the server cleans text already; the screen applies the same rules again.
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[ -/]*[0-~])|\x9b[0-?]*[ -/]*[@-~]/g;
const INVISIBLE = /(?![\u200c\u200d])[\p{Cc}\p{Cf}\u2028\u2029\u2800\ufe00-\ufe0d\u{e0000}-\u{e007f}]/gu;
const clean = (s) => String(s).replace(ESCAPES, '').replace(/\t/g, ' ').replace(INVISIBLE, '');
const fold = (s) => String(s).toLowerCase(); // nicknames and rooms are ASCII
const $ = (id) => document.getElementById(id);
const list = (v) => (Array.isArray(v) ? v : []);
const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

// commands.py COMMANDS, in /help's order: usage, then what it does.
const COMMANDS = [
  ['/msg NICK TEXT', 'send a private message to one person'],
  ['/me ACTION', 'say what you are doing: /me waves shows * you waves'],
  ['/join ROOM', 'go to a room, created if new (#ROOM works too)'],
  ['/leave', 'go back to #lobby, the room everyone starts in'],
  ['/rooms', 'list the rooms and how many people are in each'],
  ['/who', 'list who is in your room, with their addresses'],
  ['/nick NAME', 'change your nickname'],
  ['/timestamps on|off', 'show or hide the local time before messages'],
  ['/history [N]', 'show the last N messages of your room (all that is kept)'],
  ['/clear', 'empty this window (nothing is sent)'],
  ['/pass PASSWORD', 'not needed here: the start form gives the password'],
  ['/help', 'show this list'],
  ['/quit [REASON]', 'leave the chat'],
  ['q', 'leave the chat'],
  ['//TEXT', "send TEXT with its leading '/' (//who sends /who)"],
];
const COMMAND_NAMES = COMMANDS.map(([u]) => u.split(' ')[0]).filter((w) => /^\/\w/.test(w));
const NO_COMPLETION = new Set(['/nick', '/join', '/leave', '/rooms', '/who', '/timestamps',
  '/help', '/clear']);

// ledger.py: what is owed and what was seen, across connections. Every line owed
// is in one place: held (never sent) or unacked (sent, kept until acknowledged).
class Ledger {
  constructor(welcome) {
    Object.assign(this, { token: null, epoch: null, lastId: 0, lastTs: 0, seq: 0,
      unacked: [], held: [], goodbye: false });
    this.adopt(welcome);
  }
  comeback() { // the resuming hello's members (§8), absent rather than null
    const c = {};
    if (this.token) c.resume = this.token;
    if (this.epoch !== null) Object.assign(c, { epoch: this.epoch, last_id: this.lastId });
    if (this.lastTs) c.last_ts = this.lastTs;
    return c;
  }
  received(ev) { // whether the event is worth showing
    if (ev.type === 'ack') {
      if (Number.isInteger(ev.id)) this.lastId = Math.max(this.lastId, ev.id); // ours: seen
      while (this.unacked.length && this.unacked[0].seq <= ev.seq) this.unacked.shift();
      return false;
    }
    if (ev.type === 'message') {
      if (!ev.history && ev.id <= this.lastId) return false; // seen already
      this.lastId = Math.max(this.lastId, ev.id);
      this.lastTs = Math.max(this.lastTs, ev.ts || 0);
    }
    if (ev.type === 'bye') this.goodbye = ev.code === 'shutdown'; // it read nothing after
    return true;
  }
  track(ev) { // a say is numbered and kept until acknowledged (once there is a session)
    if (ev.type !== 'say' || this.token === null) return { event: ev };
    if (ev.seq === undefined) ev = { ...ev, seq: ++this.seq };
    this.unacked.push(ev);
    return { event: ev, kept: true,
      dropped: this.unacked.length > UNACKED_LINES ? this.unacked.shift() : null };
  }
  hold(ev) { return this.held.length < QUEUE_LINES && this.held.push(ev) > 0; }
  release() { return this.held.length ? this.track(this.held.shift()) : null; }
  dropHeld() { // the chat ends: what was never sent
    const never = this.held.filter((e) => e.type === 'say');
    this.held = [];
    return never;
  }
  resume(w) { // resumed: resend above acked; after a shutdown bye: all; else doubtful
    const restarted = this.epoch !== null && (w.epoch ?? null) !== this.epoch;
    const owed = this.unacked;
    const resend = w.resumed ? owed.filter((s) => s.seq > (w.acked || 0))
      : this.goodbye ? owed : [];
    const doubtful = w.resumed || this.goodbye ? [] : owed;
    this.unacked = resend.slice();
    const crashed = restarted && !this.goodbye;
    this.goodbye = false;
    this.adopt(w);
    return { restarted, crashed, resend, doubtful };
  }
  adopt(w) {
    const epoch = w.epoch ?? null;
    if (epoch !== this.epoch) this.lastId = 0; // ids restart with each run of the server
    this.token = w.session ?? null;
    this.epoch = epoch;
  }
}

// completion.py RecentNames: at most MAX_NAMES, the most recently seen offered first.
class Names extends Map {
  add(n) {
    if (typeof n !== 'string' || !n) return;
    this.delete(fold(n));
    this.set(fold(n), n);
    if (this.size > MAX_NAMES) this.delete(this.keys().next().value);
  }
  drop(n) { this.delete(fold(n)); }
  startingWith(p) {
    return [...this].reverse().filter(([k]) => k.startsWith(fold(p))).map(([, n]) => n);
  }
}
const nicks = new Names(), rooms = new Names();

const S = { // everything that changes
  nick: '', password: '', room: '', maxLine: 0, timestamps: true, unread: 0,
  ws: null, welcomed: false, up: false, ending: null, quitting: false, heard: 0, pinged: 0,
  hsTimer: 0, ledger: null, retrying: false, retryTimer: 0, retryAt: 0,
  step: RETRY_FIRST_MS, lostAt: 0, recall: [], recallAt: 0, draft: '', cycle: null,
};

// --- the log ---

const log = $('log');
const clock = (ts) => new Date(ts).toTimeString().slice(0, 5); // local HH:MM
const span = (className, textContent) =>
  Object.assign(document.createElement('span'), { className, textContent });

// One div.line per line, "[TAG] HH:MM text" as console.py prints it.
function line(tag, text, { ts, classes = [] } = {}) {
  const div = document.createElement('div');
  div.className = `line tag-${tag.toLowerCase()}`;
  div.classList.add(...classes);
  div.append(span('tag', `[${tag}]`), ' ');
  if (ts !== undefined && S.timestamps) div.append(span('time', clock(ts)), ' ');
  div.append(span('text', clean(text)));
  // Follow new lines only when the reader is at the bottom already.
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  log.append(div);
  while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}
const lines = (pairs) => pairs.forEach(([tag, text]) => line(tag, text));

// --- the header, banner and views ---

function setState(state) {
  $('status').dataset.state = state;
  $('status').textContent = state === 'connecting' ? 'connecting…' : state;
}
function where() {
  const at = S.nick + (S.room ? `@#${S.room}` : '');
  $('room').textContent = S.room;
  $('prompt').textContent = at;
  $('count').hidden = !S.room;
  document.title = `${S.unread ? `(${S.unread}) ` : ''}peerchat${S.nick ? ` — ${at}` : ''}`;
}
const setOnline = (n) => { if (Number.isInteger(n)) $('online').textContent = n; };

function banner(text, button) {
  $('banner').hidden = !text;
  $('banner-text').textContent = text || '';
  $('again').hidden = !button;
  $('again').textContent = button || '';
}
function retryBanner() {
  const left = Math.max(1, Math.ceil((S.retryAt - Date.now()) / 1000));
  if (S.retrying) {
    banner(`Connection lost — ${S.ws ? 'reconnecting now…' : `reconnecting in ${left} s`}; ` +
      'what you type is kept and sent when back.', 'Reconnect now');
  }
}

function showLogin(message, field = 'nick') {
  $('chatview').hidden = true;
  $('login').hidden = false;
  $('join').disabled = false;
  $('login-error').textContent = message || '';
  if (S.nick) $('nick').value = S.nick;
  $(field).focus();
  $(field).select();
}
function showChat() {
  $('login').hidden = true;
  $('chatview').hidden = false;
  $('say').focus();
}

// --- what the server says (console.py describe) ---

const inRoom = (room) => (room ? ` #${room}` : '');
const ours = (room) => !room || !S.room || fold(room) === fold(S.room);
function names(online, peers, addresses) {
  peers = list(peers);
  const more = online > peers.length ? ` and ${online - peers.length} more` : '';
  return peers.map((p) => (addresses ? `${p.nick} (${p.addr})` : p.nick)).join(', ') + more;
}
function members(peers, fresh) {
  if (fresh) nicks.clear();
  list(peers).slice().reverse().forEach((p) => nicks.add(p.nick));
}

// console.py mentions: a PM, or our name as a whole word ("@alice", "alice:", but
// not "malice", "alice-bot" or "x.alice"); never history, nor our own lines.
const WORD = /[\p{L}\p{N}_]/u;
function mentions(ev) {
  if (ev.history || !S.nick || fold(ev.nick) === fold(S.nick)) return false;
  if (ev.to) return true;
  const name = S.nick.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&'); // (no lookbehind: old Safari)
  const found = new RegExp(`(^|[^\\p{L}\\p{N}_-])${name}(?![\\p{L}\\p{N}_-]|\\.[\\p{L}\\p{N}_])`, 'giu');
  return [...ev.text.matchAll(found)].some((m) => m[1] !== '.' || !WORD.test(ev.text[m.index - 1] || ''));
}

const SHOW = { // each event type: what it changes, then its line
  message(ev) {
    nicks.add(ev.nick);
    const text = ev.to ? `[PM from ${ev.nick}] ${ev.text}`
      : ev.action ? `* ${ev.nick} ${ev.text}` : `<${ev.nick}> ${ev.text}`;
    const classes = ev.to ? ['private'] : [];
    if (mentions(ev)) {
      classes.push('mention');
      if (document.hidden) { S.unread++; where(); } // where the terminal rings its bell
    }
    line(ev.history ? 'HISTORY' : 'RECEIVED', text, { ts: ev.ts, classes });
  },
  welcome(w) {
    const who = w.nick === w.addr ? w.nick : `${w.nick} (${w.addr})`;
    line('INFO', `You are ${who}${w.room ? ` in #${w.room}` : ''}; ${w.online} online: ` +
      names(w.online, w.peers));
  },
  join(ev) {
    if (ours(ev.room)) { nicks.add(ev.nick); setOnline(ev.online); }
    line('INFO', `${ev.nick} joined${inRoom(ev.room)} (${ev.online} online)`);
  },
  leave(ev) {
    if (ours(ev.room)) { nicks.drop(ev.nick); setOnline(ev.online); }
    line('INFO', `${ev.nick} left${inRoom(ev.room)}${ev.reason ? `: ${ev.reason}` : ''} ` +
      `(${ev.online} online)`);
  },
  renamed(ev) {
    nicks.drop(ev.old);
    nicks.add(ev.new);
    if (fold(ev.old) === fold(S.nick)) { S.nick = ev.new; where(); }
    line('INFO', `${ev.old} is now known as ${ev.new}`);
  },
  roster(ev) {
    if (ours(ev.room)) { members(ev.peers); setOnline(ev.online); }
    line('INFO', `${ev.room ? `#${ev.room}: ` : ''}${ev.online} online: ` +
      names(ev.online, ev.peers, true));
  },
  entered(ev) {
    S.room = ev.room;
    rooms.add(ev.room);
    where();
    members(ev.peers, true);
    setOnline(ev.online);
    line('INFO', `You are now in #${ev.room}: ${ev.online} online: ${names(ev.online, ev.peers)}`);
  },
  rooms(ev) {
    const all = list(ev.rooms);
    all.slice().reverse().forEach((r) => rooms.add(r.name));
    line('INFO', `${all.length} room${all.length === 1 ? '' : 's'}: ` +
      all.map((r) => `#${r.name} (${r.online} online)`).join(', '));
  },
  info: (ev) => String(ev.text).split('\n').forEach((l) => line('INFO', l)),
  error: (ev) => line('ERROR', ev.message),
  bye(ev) { // nothing follows: note why, and close
    S.ending = { code: ev.code, reason: ev.reason,
      text: `The server closed the connection: ${ev.reason}` };
    S.ws.close();
  },
};

function frame(ws, data) {
  S.heard = Date.now();
  let ev = null;
  try { ev = JSON.parse(data); } catch (e) { /* not JSON, such as plain text before the hello */ }
  if (!ev || typeof ev !== 'object' || typeof ev.type !== 'string') return;
  if (ev.type === 'ping') transmit({ type: 'pong', token: String(ev.token ?? '') });
  else if (!S.welcomed) beforeWelcome(ws, ev);
  // An ack, or a message seen already, shows nothing; unknown types are ignored (§4).
  else if (S.ledger.received(ev) && own(SHOW, ev.type)) SHOW[ev.type](ev);
}

function beforeWelcome(ws, ev) { // §2: only a welcome, or the error or bye of a refusal
  if (ev.type === 'welcome') { welcome(ws, ev); return; }
  if (ev.type !== 'error' && ev.type !== 'bye') return;
  S.ending = S.ending || { code: ev.code, // an error says more than the bye after it
    text: `The server refused the connection: ${ev.type === 'bye' ? ev.reason : ev.message}` };
  ws.close();
}

function welcome(ws, w) {
  clearTimeout(S.hsTimer);
  if (w.version > 3) { // §6: a version we do not speak
    S.ending = { code: 'version', text: `The server speaks protocol version ${w.version}; ` +
      'this page only 3: reload it' };
    ws.close();
    return;
  }
  Object.assign(S, { welcomed: true, up: true, retrying: false,
    nick: w.nick, room: w.room || '', maxLine: w.max_line || 0 });
  members(w.peers, true);
  rooms.add(w.room);
  setOnline(w.online);
  where();
  setState('connected');
  banner('');
  if (!S.ledger || !$('login').hidden) showChat(); // else the focus stays where it is
  if (!S.ledger) { // the first welcome of this chat
    S.ledger = new Ledger(w);
    line('SUCCESS', `Connected to server at ${HOST}`);
    SHOW.welcome(w);
    return;
  }
  // Coming back (link.py _resume): what happened, then what is owed, in order.
  const r = S.ledger.resume(w);
  line('RECONNECTED', `Back on ${HOST} after ${((Date.now() - S.lostAt) / 1000).toFixed(1)} s: ` +
    `you are ${w.nick}${w.room ? ` in #${w.room}` : ''}.`);
  lines(missed(w, r));
  if (r.doubtful.length) {
    line('WARNING', `The server went away before confirming ${r.doubtful.length} of your ` +
      `lines, so they may not have reached everyone: ${short(r.doubtful)}. Send again what matters.`);
  }
  SHOW.welcome(w);
  r.resend.forEach(transmit);
  if (r.resend.length) {
    line('INFO', `Sent again the ${r.resend.length} lines the server had not confirmed.`);
  }
  for (let t; (t = S.ledger.release());) {
    transmit(noted(t).event);
    if (t.event.type === 'say') said(t.event);
  }
}

function missed(w, r) { // notices.py missed(): what the welcome says was missed
  const lead = r.restarted
    ? 'The server restarted, or you reached another one, while you were away. ' : '';
  const out = [];
  const n = w.missed;
  if (Number.isInteger(n) && w.gap) {
    out.push(['WARNING', `${lead}More was said while you were away than the server keeps: ` +
      `some ${n ? `messages are lost to you; the last ${n} follow.` : 'may be lost to you.'}`]);
  } else if (Number.isInteger(n)) {
    out.push(['INFO', lead + (n === 0 ? 'You missed nothing.'
      : n === 1 ? '1 message you missed follows.' : `${n} messages you missed follow.`)]);
  } else if (r.restarted) {
    out.push(['WARNING', `${lead}What was said meanwhile was not kept.`]);
  } else if (!w.resumed && w.session) {
    out.push(['WARNING', 'The server no longer knew this session (away too long): what ' +
      'was said meanwhile is lost to you.']);
  }
  if (r.crashed) {
    out.push(['WARNING', 'It went away without a goodbye: what was said just before may be ' +
      'lost to you.']);
  }
  return out;
}
const short = (says, limit = 20) => says.slice(0, limit)
  .map((s) => JSON.stringify(s.text.slice(0, 60))).join('; ') +
  (says.length > limit ? ` and ${says.length - limit} more` : '');

// --- the connection ---

function connect() {
  clearTimeout(S.retryTimer);
  const ws = new WebSocket(URL);
  Object.assign(S, { ws, welcomed: false, ending: null, heard: Date.now(), pinged: 0 });
  setState('connecting');
  retryBanner();
  S.hsTimer = setTimeout(() => {
    if (ws !== S.ws) return;
    S.ending = { text: `No welcome from ${HOST} within ${HANDSHAKE_MS / 1000} s` };
    lost(ws);
  }, HANDSHAKE_MS);
  ws.addEventListener('open', () => {
    const hello = { type: 'hello', version: 3 };
    if (NICK_RE.test(S.nick)) hello.nick = S.nick; // not a name made from our address
    hello.client = 'peerchat-web/0.1';
    if (S.password) hello.password = S.password;
    if (S.ledger) Object.assign(hello, S.ledger.comeback(), S.room ? { room: S.room } : {});
    ws.send(JSON.stringify(hello));
  });
  ws.addEventListener('message', (e) => {
    if (ws === S.ws && typeof e.data === 'string') frame(ws, e.data);
  });
  ws.addEventListener('close', () => lost(ws));
}

function transmit(ev) {
  const ws = S.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !(S.welcomed || ev.type === 'pong')) return false;
  ws.send(JSON.stringify(ev));
  return true;
}

// The socket `ws` ended, or is given up on: what comes next.
function lost(ws) {
  if (ws !== S.ws) return; // an older socket's late news
  clearTimeout(S.hsTimer);
  ws.close();
  const end = S.ending || {}, wasUp = S.up;
  Object.assign(S, { ws: null, ending: null, up: false, welcomed: false });
  setState('disconnected');
  if (S.quitting) {
    quitted(end.reason);
  } else if (PASSWORD_CODES.has(end.code) || end.code === 'invalid_nick') {
    const password = PASSWORD_CODES.has(end.code);
    if (S.ledger) line('ERROR', end.text); // what is owed stays owed
    S.retrying = false;
    banner('');
    showLogin(end.text + (password ? ". Enter the server's password." : ''),
      password ? 'password' : 'nick');
  } else if (!S.ledger) { // never welcomed: the start form says why
    showLogin(end.text || `Could not connect to ${HOST}: is the server running? Press Join ` +
      'to try again.');
  } else if (end.code && !RECONNECT_AFTER.has(end.code)) {
    // A final goodbye (flooding…): link.py ends the chat; here a button may come back.
    S.retrying = false;
    line('ERROR', end.text);
    const owed = S.ledger.held.length + S.ledger.unacked.length;
    if (owed) line('WARNING', `${owed} of your lines are kept, to send if you connect again.`);
    banner(`Disconnected: ${end.text}`, 'Connect again');
  } else {
    if (wasUp) {
      const reason = (end.text || `The connection to ${HOST} was lost`).replace(/\.$/, '');
      line('DISCONNECTED', `${reason}. Reconnecting to ${HOST}; what you type meanwhile is ` +
        'sent once back (/quit gives up).');
      Object.assign(S, { retrying: true, lostAt: Date.now(), step: RETRY_FIRST_MS });
    }
    if (S.retrying) retryLater();
  }
}

// Capped exponential backoff with equal jitter (protocol backoff.py), so that a
// server that restarts is not hit by every client in the same instant.
function retryLater() {
  const delay = S.step / 2 + (Math.random() * S.step) / 2;
  S.step = Math.min(S.step * 2, RETRY_CAP_MS);
  S.retryAt = Date.now() + delay;
  S.retryTimer = setTimeout(connect, delay);
  retryBanner();
}
// The banner's button, or the network back: now, and anew if an attempt is pending
// (made over the network that went, it could hang until its handshake timeout).
function retryNow() {
  if (S.up || S.quitting) return;
  if (S.ws) {
    const stale = S.ws;
    S.ws = null; // its close event is old news now
    clearTimeout(S.hsTimer);
    stale.close();
  }
  if (S.ledger && !S.retrying) Object.assign(S, { retrying: true, lostAt: Date.now() });
  S.step = RETRY_FIRST_MS;
  connect(); // (without a ledger, after /quit: a new chat)
}

function quit(reason) {
  line('INFO', 'Quitting...');
  if (!S.ledger) return;
  const never = S.ledger.dropHeld(), unsure = S.up ? [] : S.ledger.unacked;
  if (never.length) line('WARNING', `${never.length} of your lines were never sent: ${short(never)}.`);
  if (unsure.length) {
    line('WARNING', `${unsure.length} of your lines were sent but not confirmed, so they may ` +
      `not have reached everyone: ${short(unsure)}.`);
  }
  clearTimeout(S.retryTimer);
  S.quitting = true;
  const ws = S.ws;
  if (S.up && transmit(reason ? { type: 'quit', reason } : { type: 'quit' })) {
    setTimeout(() => lost(ws), 2000); // the server's bye closes it; if not, we do
  } else if (ws) {
    lost(ws);
  } else {
    quitted();
  }
}
function quitted(reason) {
  if (reason) line('INFO', reason);
  Object.assign(S, { quitting: false, retrying: false, ledger: null });
  banner('You left the chat.', 'Join again'); // a new session: that one is over
}

// --- what the user types ---

function said(say) { // console.py said_text, timed now: the server does not echo it
  const text = say.to ? `[PM to ${say.to}] ${say.text}`
    : say.action ? `* ${S.nick} ${say.text}` : say.text;
  line('SENT', text, { ts: Date.now(), classes: say.to ? ['private'] : [] });
}
function noted(t) {
  if (t.dropped) {
    line('WARNING', `${UNACKED_LINES} lines wait for the server's confirmation; ` +
      `${JSON.stringify(t.dropped.text.slice(0, 60))} will not be sent again if the connection drops.`);
  }
  return t;
}
const waiting = (ev) => line('WAIT', 'Not connected; will be sent once reconnected' +
  (ev.type === 'say' ? `: ${ev.text}` : ''));

function send(ev) { // link.py send: now, or held until the connection is back
  if (!S.ledger) return line('ERROR', 'not sent: you left the chat ("Join again" comes back)');
  const size = new TextEncoder().encode(JSON.stringify(ev)).length;
  if (S.maxLine && size > S.maxLine) {
    line('ERROR', `message too long (${size} bytes encoded; the server takes ${S.maxLine}): ` +
      'not sent');
  } else if (S.up) {
    const t = noted(S.ledger.track(ev));
    if (transmit(t.event)) {
      if (ev.type === 'say') said(t.event);
    } else {
      if (!t.kept) S.ledger.held.push(ev); // else it is among those sent again once back
      waiting(ev);
    }
  } else if (S.ledger.hold(ev)) {
    waiting(ev);
  } else {
    line('ERROR', `not sent: still reconnecting to ${HOST}, and ${QUEUE_LINES} lines already ` +
      'wait to be sent; wait until the connection is back');
  }
}

// commands.py: each /command's arguments to an action [kind, value].
const PARSERS = {
  msg(args) {
    const [, to, text] = /^(\S*)\s*(.*)$/.exec(args);
    return to && text ? ['send', { type: 'say', text, to }]
      : ['complain', 'usage: /msg NICK TEXT (for example: /msg bob see you at 5)'];
  },
  me: (args) => (args ? ['send', { type: 'say', text: args, action: true }]
    : ['complain', 'usage: /me ACTION (for example: /me waves)']),
  join(args) {
    const room = args.replace(/^#/, '');
    if (!room) return ['complain', 'usage: /join ROOM (for example: /join games)'];
    return ROOM_RE.test(room) ? ['send', { type: 'join_room', room }]
      : ['complain', `cannot use ${JSON.stringify(args)} as a room name: up to 32 letters A-Z, ` +
        "digits, '_', '-' and '.', starting with a letter or digit; for example: /join games"];
  },
  leave: () => ['send', { type: 'leave_room' }],
  rooms: () => ['send', { type: 'list_rooms' }],
  who: () => ['send', { type: 'who' }],
  nick(args) {
    if (!args) return ['complain', 'usage: /nick NAME'];
    return NICK_RE.test(args) ? ['send', { type: 'nick', nick: args }]
      : ['complain', `cannot use ${JSON.stringify(args)} as a nickname: ${NICK_RULE}`];
  },
  timestamps(args) {
    const on = args.toLowerCase();
    return on === 'on' || on === 'off' ? ['timestamps', on === 'on']
      : ['complain', 'usage: /timestamps on|off'];
  },
  history(args) {
    if (!args) return ['send', { type: 'history' }];
    return /^[0-9]{1,9}$/.test(args) && Number(args) > 0
      ? ['send', { type: 'history', limit: Number(args) }]
      : ['complain', 'usage: /history [N], N a number of messages (for example: /history 50)'];
  },
  clear: () => ['clear'],
  help: () => ['help'],
  quit: (args) => ['quit', args.slice(0, 200)],
  pass: () => ['complain', "this page gives the server's password when it connects: type " +
    'it in the start form (/quit, then Join again)'],
};

function parse(raw) { // commands.py parse_line; null for a blank line
  const text = clean(raw);
  if (!text.trim()) return null;
  if (text.trim() === 'q') return ['quit', ''];
  if (text.startsWith('//')) return ['send', { type: 'say', text: text.slice(1) }];
  if (!text.startsWith('/')) return ['send', { type: 'say', text }];
  const [, name, args] = /^\/(\S*)\s*(.*)$/.exec(text);
  return own(PARSERS, name.toLowerCase()) ? PARSERS[name.toLowerCase()](args.trim())
    : ['complain', `unknown command /${name.slice(0, 32)}: type /help for the list (start ` +
      'a line with // to send it as text)'];
}

function act(raw) {
  const [kind, value] = parse(raw) || [];
  if (kind === 'send') send(value);
  else if (kind === 'complain') line('ERROR', value);
  else if (kind === 'quit') quit(value);
  else if (kind === 'clear') log.replaceChildren();
  else if (kind === 'timestamps') {
    S.timestamps = value;
    line('INFO', `Timestamps are ${value ? 'on' : 'off'}.`);
  } else if (kind === 'help') {
    const width = Math.max(...COMMANDS.map(([u]) => u.length)) + 2;
    lines([['INFO', 'Commands:'], ...COMMANDS.map(([u, s]) => ['INFO', `  ${u.padEnd(width)}${s}`]),
      ['INFO', 'Anything else you type goes to everyone in your room.'],
      ['INFO', 'Tab completes commands, nicknames (after /msg) and rooms (after /join); ' +
        'Up and Down recall earlier lines.']]);
  }
}

// completion.py ChatCompleter: what may replace the word before the caret.
function candidates(before) {
  const words = before.split(' ');
  const word = words[words.length - 1], command = words[0].toLowerCase();
  const nick = () => (word ? nicks.startingWith(word).filter((n) => fold(n) !== fold(S.nick)) : []);
  if (words.length === 1) {
    if (word.startsWith('//')) return [];
    return word.startsWith('/') ? COMMAND_NAMES.filter((c) => c.startsWith(command)) : nick();
  }
  if (command === '/join' && words.length === 2) {
    const hash = word.startsWith('#') ? '#' : '';
    return rooms.startingWith(word.slice(hash.length)).map((r) => hash + r);
  }
  return NO_COMPLETION.has(command) ? [] : nick();
}

// Tab replaces the word with the first candidate, Tab again with the next (Shift+Tab
// the one before); with nothing to complete, Tab moves the focus on as usual.
function complete(input, backward) {
  let c = S.cycle;
  if (c && input.value === c.value && input.selectionStart === c.end) {
    c.i = (c.i + (backward ? c.list.length - 1 : 1)) % c.list.length;
  } else {
    const at = input.selectionStart;
    if (backward || at !== input.selectionEnd) return false;
    const before = input.value.slice(0, at);
    const found = candidates(before).slice(0, 50);
    if (!found.length) return false;
    const start = before.length - before.split(' ').pop().length;
    c = S.cycle = { list: found, i: 0, start, after: input.value.slice(at) };
  }
  const head = input.value.slice(0, c.start) + c.list[c.i];
  input.value = head + c.after;
  input.setSelectionRange(head.length, head.length);
  Object.assign(c, { value: input.value, end: head.length });
  return true;
}

function recall(input, step) { // Up/Down as in a shell; the line being typed is kept
  const at = S.recallAt + step;
  if (at < 0 || at > S.recall.length) return;
  if (S.recallAt === S.recall.length) S.draft = input.value;
  S.recallAt = at;
  input.value = at === S.recall.length ? S.draft : S.recall[at];
  input.setSelectionRange(input.value.length, input.value.length);
}

// --- wiring ---

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  const nick = $('nick').value.trim();
  if (!NICK_RE.test(nick)) {
    showLogin(nick ? `Cannot use that nickname: ${NICK_RULE}.` : 'Enter a nickname.');
    return;
  }
  Object.assign(S, { nick, password: $('password').value });
  $('login-error').textContent = '';
  $('join').disabled = true;
  if (S.ledger) Object.assign(S, { retrying: true, step: RETRY_FIRST_MS }); // coming back
  if (!S.ws) connect();
});

$('chat').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('say'), text = input.value;
  input.value = '';
  S.cycle = null;
  if (text.trim() && text !== S.recall[S.recall.length - 1]) {
    if (S.recall.push(text) > MAX_RECALL) S.recall.shift();
  }
  Object.assign(S, { recallAt: S.recall.length, draft: '' });
  log.scrollTop = log.scrollHeight; // what you send, you see
  act(text);
});

$('say').addEventListener('keydown', (e) => {
  if (e.isComposing || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.key === 'Tab' && complete(e.target, e.shiftKey)) e.preventDefault();
  if ((e.key === 'ArrowUp' || e.key === 'ArrowDown') && !e.shiftKey) {
    e.preventDefault();
    recall(e.target, e.key === 'ArrowUp' ? -1 : 1);
  }
});

$('again').addEventListener('click', retryNow);
window.addEventListener('online', () => { if (S.retrying) retryNow(); });
document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  if (S.unread) { S.unread = 0; where(); }
  if (S.retrying && !S.ws) retryNow(); // a phone's tab shown again: no waiting out the backoff
});

// One ticker: link.py's keepalive, and the banner's countdown.
setInterval(() => {
  const now = Date.now();
  if (S.ws && S.welcomed) {
    if (S.pinged && S.heard >= S.pinged) S.pinged = 0; // something came back: alive
    if (!S.pinged && now - S.heard >= KEEPALIVE_MS) {
      transmit({ type: 'ping', token: 'keepalive' });
      S.pinged = now;
    } else if (S.pinged && now - S.pinged >= KEEPALIVE_MS) {
      S.ending = { text: `No answer from ${HOST} for ${Math.round((now - S.heard) / 1000)} s: ` +
        'the network or the server is down' };
      lost(S.ws);
    }
  }
  if (!S.ws) retryBanner();
}, 1000);

setState('disconnected');
where();
$('nick').focus();
})();
