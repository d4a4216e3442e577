/*! Switchboard chat widget. One classic script, no dependencies:
 *  <script src="https://HUB/widget.js" data-hub="https://HUB" data-topic="billing" async></script>
 *  Optional: data-user-id, data-name, data-email, data-issued-at, data-signature (identity verification),
 *  data-title, data-color, data-locale (en, fr, de, es, pt, ar; else the browser's language: see
 *  docs/languages.md). Wire contract: docs/protocol.md (v1).
 *
 *  Delivery discipline: every message gets a client_msg_id and sits in an outbox (memory +
 *  sessionStorage) until the hub acks it; after a reconnect the outbox is resent and the hub
 *  de-duplicates. Events are applied strictly in seq order per conversation; live events that
 *  arrive ahead of a gap wait in a buffer until `history` fills it. A silent socket is found
 *  with the protocol's `ping` (nothing heard for 10 s -> ping; no answer in 10 s -> reconnect). */
(function () {
  'use strict';
  if (window.SwitchboardWidget) return;

  // ---------------------------------------------------------------- configuration
  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1];
  })();
  var ds = (script && script.dataset) || {};
  var HUB = String(ds.hub || '').replace(/\/+$/, '') || location.origin;
  var TOPIC = ds.topic || undefined;
  var COLOR = /^#[0-9a-f]{3,8}$/i.test(ds.color || '') ? ds.color : '#4f46e5';
  var IDLE_MS = 10000;        // nothing heard this long -> ping
  var PING_TIMEOUT_MS = 10000; // no answer to the ping -> the socket is dead
  var CONNECT_TIMEOUT_MS = 10000; // socket open + welcome
  var REQUEST_TIMEOUT_MS = 20000;
  var BACKOFF_MAX_MS = 8000;
  var MAX_TEXT = 8000;
  var KEY = 'switchboard:' + HUB + ':';

  var identity = null;
  if (ds.userId && ds.signature) {
    identity = { user_id: ds.userId, signature: ds.signature };
    if (ds.name) identity.name = ds.name;
    if (ds.email) identity.email = ds.email;
    if (ds.issuedAt) identity.issued_at = Number(ds.issuedAt); // the extended, expiring form
  }

  // ---------------------------------------------------------------- languages
  // English is built in; the other tables live in widget-locales.js beside this script,
  // loaded (one more request) only when another language is chosen. The choice:
  // data-locale, else the first of the browser's languages with a table, else English.
  // A key missing from a table falls back to English. docs/languages.md says more.
  var EN = {
    title: 'Chat with us',
    open: 'Open chat',
    openUnread: { one: 'Open chat, {n} unread message', other: 'Open chat, {n} unread messages' },
    close: 'Close chat',
    closeWindow: 'Close chat window',
    end: 'End chat',
    endLabel: 'End this chat',
    log: 'Conversation',
    input: 'Write a message',
    placeholder: 'Write a message\u2026',
    send: 'Send',
    sendLabel: 'Send message',
    online: 'Online',
    weOnline: 'We\u2019re online',
    waiting: 'Waiting for an agent',
    away: 'Away',
    connecting: 'Connecting\u2026',
    reconnecting: 'Reconnecting\u2026',
    queue: 'You\u2019re #{pos} in line \u00b7 {wait}',
    queueNext: 'Waiting for the next available agent\u2026',
    waitNow: 'any moment now',
    waitUnder: 'under a minute',
    waitMin: { one: 'about {n} min', other: 'about {n} min' },
    empty: 'Hi there \ud83d\udc4b Ask us anything \u2014 we usually reply in a few minutes.',
    typing: '{name} is typing',
    anAgent: 'An agent',
    joined: '{name} joined the chat',
    left: '{name} left the chat',
    toTeam: 'Transferring you to the {topic} team\u2026',
    toAgent: 'Transferring you to {name}\u2026',
    anotherAgent: 'another agent',
    ended: 'Chat ended',
    endedTicket: 'Chat ended \u00b7 ticket {ticket}',
    sending: 'Sending\u2026',
    sent: 'Sent',
    read: 'Read',
    notSent: 'Not sent',
    tooLong: 'Too long',
    offAway: 'We\u2019re away right now',
    offClosed: 'We\u2019re closed right now',
    offWait: 'Sorry for the wait',
    offText: 'Leave a message and we\u2019ll get back to you by email.',
    offTextWait: 'Leave a message and we\u2019ll get back to you by email \u2014 or keep waiting for an agent.',
    offForm: 'Leave us a message',
    name: 'Name',
    email: 'Email',
    message: 'Message',
    offSend: 'Send message',
    offMissing: 'Please fill in your email and a message.',
    offNoConn: 'No connection \u2014 please try again in a moment.',
    offFailed: 'Sorry, that did not work ({code}).',
    keepWaiting: 'Keep waiting',
    ticketTitle: 'Thanks, we got your message',
    ticketText: 'Your ticket number is {ticket}. We\u2019ll reply by email.',
    rateTitle: 'How did we do?',
    rateLabel: 'Rate this chat',
    rateScale: 'Rate this chat from 1 to 5',
    stars: { one: '{n} star', other: '{n} stars' },
    npsTitle: 'How likely are you to recommend us?',
    npsScale: 'How likely are you to recommend us? 0 (not at all) to 10 (extremely)',
    npsLow: 'Not likely',
    npsHigh: 'Very likely',
    comment: 'Comment (optional)',
    commentHint: 'Anything to add? (optional)',
    rateSend: 'Send rating',
    rateNoConn: 'No connection \u2014 try again in a moment.',
    rateFailed: 'Could not send the rating ({code}).',
    thanks: 'Thanks for your feedback!',
    transcript: 'Download the transcript',
    newChat: 'Start a new conversation',
    attach: 'Attach a file',
    uploading: 'Sending {name}\u2026',
    fileTooLarge: 'That file is too large to send.',
    fileType: 'That kind of file cannot be sent.',
    fileFailed: 'The file could not be sent ({code}).',
    fileGone: '{name} is no longer available',
    endAsk: 'End this chat?',
    endText: 'You can start a new one at any time.',
    endYes: 'End chat',
    endNo: 'Keep chatting'
  };
  // The languages widget-locales.js has; a page may register more tables in
  // window.SwitchboardLocales before this script runs.
  var LANGS = ['en', 'fr', 'de', 'es', 'pt', 'ar'];
  var RTL = { ar: true, he: true, fa: true, ur: true };
  function known(lang) { return LANGS.indexOf(lang) >= 0 || !!(window.SwitchboardLocales && window.SwitchboardLocales[lang]); }
  var LOCALES_URL = script && /widget\.js(\?.*)?$/.test(script.src || '') ? script.src.replace(/widget\.js(\?.*)?$/, 'widget-locales.js')
    : HUB + '/widget-locales.js';
  var LOCALE_TIMEOUT_MS = 5000;

  // {lang: a table's code, tag: the BCP 47 tag dates and numbers are formatted for}.
  function pickLocale() {
    var asked = [ds.locale].concat(navigator.languages || [navigator.language]);
    for (var i = 0; i < asked.length; i++) {
      var tag = String(asked[i] || '').trim().replace(/_/g, '-');
      var lang = tag.split('-')[0].toLowerCase();
      if (!lang || !known(lang)) continue;
      try { Intl.DateTimeFormat.supportedLocalesOf([tag]); } catch (e) { tag = lang; } // not a valid tag
      return { lang: lang, tag: tag };
    }
    return { lang: 'en', tag: 'en' };
  }
  var LOC = pickLocale();
  var TABLE = EN;

  function useLocale(loc, table) {
    LOC = loc; TABLE = table;
    LOC.dir = RTL[loc.lang] ? 'rtl' : 'ltr';
    try { LOC.plural = new Intl.PluralRules(loc.tag); LOC.num = new Intl.NumberFormat(loc.tag); } catch (e) { LOC.plural = LOC.num = null; }
  }
  useLocale(LOC, EN);

  // Loads the chosen language's table, then calls `done` (English on error or timeout).
  function loadLocale(done) {
    var want = LOC, finished = false, timer = 0;
    function finish() {
      if (finished) return;
      finished = true; clearTimeout(timer);
      var table = window.SwitchboardLocales && window.SwitchboardLocales[want.lang];
      if (table || want.lang === 'en') useLocale(want, table || EN); else useLocale({ lang: 'en', tag: 'en' }, EN);
      done();
    }
    if (want.lang === 'en' || (window.SwitchboardLocales && window.SwitchboardLocales[want.lang])) { finish(); return; }
    var tag = document.createElement('script');
    tag.src = LOCALES_URL; tag.async = true; tag.charset = 'utf-8';
    tag.onload = tag.onerror = finish;
    timer = setTimeout(finish, LOCALE_TIMEOUT_MS);
    (document.head || document.documentElement).appendChild(tag);
  }

  function num(n) { try { return LOC.num ? LOC.num.format(n) : String(n); } catch (e) { return String(n); } }

  // The text for `key` with {name} placeholders filled; a table entry may be an object of
  // plural forms (Intl.PluralRules categories) chosen by `p.n`. Names inside a right-to-left
  // text are isolated (U+2068 ... U+2069) so a Latin name does not reorder the sentence.
  function t(key, p) {
    var s = TABLE[key] != null ? TABLE[key] : EN[key];
    if (s && typeof s === 'object') {
      var form = 'other';
      try { if (LOC.plural) form = LOC.plural.select(p.n); } catch (e) { /* other */ }
      s = s[form] != null ? s[form] : s.other;
    }
    return String(s == null ? key : s).replace(/\{(\w+)\}/g, function (m, k) {
      var v = p && p[k];
      if (v == null) return m;
      if (typeof v === 'number') return num(v);
      return LOC.dir === 'rtl' ? '\u2068' + v + '\u2069' : String(v);
    });
  }
  function title() { return ds.title || t('title'); }

  // ---------------------------------------------------------------- storage helpers
  function store(kind) {
    try { var s = window[kind]; s.setItem(KEY + 't', '1'); s.removeItem(KEY + 't'); return s; } catch (e) { return null; }
  }
  var local = store('localStorage');
  var session = store('sessionStorage');
  function get(s, k) { try { return s ? s.getItem(KEY + k) : null; } catch (e) { return null; } }
  function put(s, k, v) { try { if (s) { if (v == null) s.removeItem(KEY + k); else s.setItem(KEY + k, v); } } catch (e) { /* full or blocked */ } }
  function getJSON(s, k, d) { try { var v = get(s, k); return v ? JSON.parse(v) : d; } catch (e) { return d; } }

  function randomId(prefix) {
    var b = new Uint8Array(8);
    (window.crypto || window.msCrypto).getRandomValues(b);
    var h = '';
    for (var i = 0; i < b.length; i++) h += (b[i] + 256).toString(16).slice(1);
    return prefix + h;
  }

  // ---------------------------------------------------------------- model
  var S = {
    conn: 'idle',         // idle | connecting | open | reconnecting
    ws: null,
    welcomed: false,
    synced: false,        // welcome conversations caught up through history
    attempt: 0,
    retryTimer: 0,
    lastHeard: 0,
    ping: null,           // {req, at, timeout}
    reqN: 0,
    reqs: {},             // req -> {resolve, reject, timer}
    online: null,
    closedMessage: null,  // the topic's out-of-hours message while it is closed (issue 18)
    visitorId: null,
    convs: {},            // id -> conversation
    current: null,        // id of the conversation shown
    outbox: [],           // {cmid, text, ts, conv, start, state, seq, error}
    startInFlight: false,
    open: false,
    offline: null,        // {sending, ticket, error}
    typingOn: false, typingSentAt: 0, typingTimer: 0,
    rating: null,         // {score, sending, error}
    uploads: [],          // files being uploaded: {name}
    fileError: null,      // why the last upload failed, shown under the log
    confirmEnd: null,     // id of the conversation whose "End chat" awaits a yes
  };

  S.outbox = getJSON(session, 'outbox', []).filter(function (it) { return it && it.cmid && (it.text || it.attachment); });
  S.outbox.forEach(function (it) { it.state = 'queued'; });

  function saveOutbox() {
    var keep = S.outbox.filter(function (it) { return it.state === 'queued' || it.state === 'sending'; })
      .map(function (it) { return { cmid: it.cmid, text: it.text, ts: it.ts, conv: it.conv, start: it.start, attachment: it.attachment }; });
    put(session, 'outbox', keep.length ? JSON.stringify(keep) : null);
  }

  function conv(id) {
    var c = S.convs[id];
    if (!c) {
      c = S.convs[id] = {
        id: id, state: 'queued', applied: 0, buffer: {}, buffered: 0, historyBusy: false,
        events: [], agent: null, readSeq: +get(local, 'read:' + id) || 0, queue: null, closed: null, typing: null,
        seen: +get(local, 'seen:' + id) || 0, sentRead: 0,
      };
    }
    return c;
  }
  function openConv() {
    for (var id in S.convs) if (S.convs[id].state !== 'closed' && !S.convs[id].stale) return S.convs[id];
    return null;
  }
  function cur() { return S.current ? S.convs[S.current] : null; }

  // ---------------------------------------------------------------- connection
  function wsUrl(path) { return HUB.replace(/^http/i, 'ws') + path; }

  function setConn(state) { S.conn = state; render(); }

  function connect() {
    clearTimeout(S.retryTimer); S.retryTimer = 0;
    if (S.ws) return;
    setConn(S.attempt ? 'reconnecting' : 'connecting');
    var sock;
    try { sock = new WebSocket(wsUrl('/v1/customer/ws')); } catch (e) { scheduleReconnect(); return; }
    S.ws = sock; S.welcomed = false; S.synced = false; S.lastHeard = Date.now();
    var guard = setTimeout(function () { if (S.ws === sock && !S.welcomed) drop('connect timeout'); }, CONNECT_TIMEOUT_MS);
    sock.onopen = function () {
      if (S.ws !== sock) return;
      S.lastHeard = Date.now();
      // No echo: our own message comes back as its ack (with seq and ts), not a second frame.
      var hello = { type: 'hello', role: 'customer', echo: false };
      var tok = get(local, 'session');
      if (tok) hello.session = tok;
      if (ds.name) hello.name = ds.name;
      if (ds.email) hello.email = ds.email;
      if (identity) hello.identity = identity;
      sock.sentSession = !!tok;
      raw(hello);
    };
    sock.onmessage = function (e) {
      if (S.ws !== sock) return;
      S.lastHeard = Date.now();
      var m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m && typeof m.type === 'string') onFrame(m);
    };
    sock.onclose = function (e) {
      clearTimeout(guard);
      if (S.ws !== sock) return;
      if (e.code === 4401) {
        // The session (or the identity signature) was refused: come back as a new visitor.
        if (sock.sentSession) put(local, 'session', null);
        else if (identity) { identity = null; if (window.console) console.warn('switchboard: identity refused by the hub'); }
      }
      closed();
    };
    sock.onerror = function () { /* a close event follows */ };
  }

  // Give up on the current socket without waiting for a close handshake that a dead peer
  // would never complete, and reconnect.
  function drop(why) {
    var sock = S.ws;
    if (!sock) return;
    sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
    try { sock.close(4000, why); } catch (e) { /* already closing */ }
    closed();
  }

  function closed() {
    S.ws = null; S.welcomed = false; S.synced = false; S.ping = null; S.startInFlight = false;
    var reqs = S.reqs; S.reqs = {};
    for (var r in reqs) { clearTimeout(reqs[r].timer); reqs[r].reject({ code: 'disconnected' }); }
    for (var id in S.convs) { S.convs[id].historyBusy = false; S.convs[id].typing = null; }
    S.typingOn = false;
    S.outbox.forEach(function (it) { if (it.state === 'sending') it.state = 'queued'; });
    setConn('reconnecting');
    scheduleReconnect();
  }

  function scheduleReconnect(now) {
    if (S.retryTimer || S.ws) return;
    var cap = Math.min(BACKOFF_MAX_MS, 500 * Math.pow(2, S.attempt));
    S.attempt++;
    var delay = now ? 0 : cap / 2 + Math.random() * cap / 2; // exponential backoff, jittered
    S.retryTimer = setTimeout(function () { S.retryTimer = 0; connect(); }, delay);
  }

  // The network came back or the page became visible: check the socket now.
  function probe() {
    if (!S.ws) { S.attempt = 0; clearTimeout(S.retryTimer); S.retryTimer = 0; connect(); return; }
    if (S.welcomed && !S.ping) sendPing(5000);
  }

  function sendPing(timeout) {
    var req = 'p' + (++S.reqN);
    S.ping = { req: req, at: Date.now(), timeout: timeout || PING_TIMEOUT_MS };
    raw({ type: 'ping', req: req });
  }

  setInterval(function () {
    if (!S.ws || S.ws.readyState !== 1 || !S.welcomed) return;
    var now = Date.now();
    if (S.ping) {
      if (S.lastHeard > S.ping.at) S.ping = null; // something arrived: the socket is alive
      else if (now - S.ping.at >= S.ping.timeout) drop('ping timeout');
    } else if (now - S.lastHeard >= IDLE_MS) sendPing();
  }, 1000);

  window.addEventListener('online', probe);

  // Whether the desk is online for this widget's topic, from a `welcome` or a
  // `presence` ack: business hours (the `topics` map, when sent) and agents available.
  function applyOnline(m) {
    var tp = m.topics && ((TOPIC && m.topics[TOPIC]) || Object.keys(m.topics).map(function (k) { return m.topics[k]; }).filter(function (x) { return x.default; })[0]);
    S.online = tp ? tp.online !== false : m.online !== false;
    S.closedMessage = (tp && tp.message) || null;
  }

  // The desk opens and closes while the page is open: ask again every PRESENCE_MS while
  // it matters (no chat with an agent yet), so the offline form gives way to the chat
  // when an agent becomes available, and a customer queued while nobody is there is
  // offered to leave a message.
  // With data-topic the question names it: "online" then means an agent who could take
  // that topic is there, not just any agent.
  var PRESENCE_MS = 10000;
  function askPresence() {
    var c = cur();
    var f = { type: 'presence' };
    if (TOPIC) f.topic = TOPIC;
    request(f).then(function (ack) {
      var was = S.online;
      applyOnline(ack);
      if (c && c.state === 'queued' && S.online === false) c.leaveMessage = true;
      if (was !== S.online || (c && c.leaveMessage)) render();
    }, function () { /* offline: the next tick asks again */ });
  }
  setInterval(function () {
    if (!S.welcomed || document.hidden) return;
    var c = cur();
    if (c && c.state === 'assigned') return;
    askPresence();
  }, PRESENCE_MS);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') { probe(); markRead(); }
  });

  function raw(obj) {
    if (!S.ws || S.ws.readyState !== 1) return false;
    try { S.ws.send(JSON.stringify(obj)); return true; } catch (e) { return false; }
  }

  function request(frame) {
    return new Promise(function (resolve, reject) {
      if (!S.ws || !S.welcomed) { reject({ code: 'disconnected' }); return; }
      var req = 'r' + (++S.reqN);
      frame.req = req;
      var sock = S.ws;
      var entry = {
        resolve: resolve, reject: reject,
        timer: setTimeout(function () {
          if (S.reqs[req] !== entry) return;
          delete S.reqs[req]; reject({ code: 'timeout' });
          if (S.ws === sock && !S.ping) sendPing(5000); // no answer: make sure the socket still lives
        }, REQUEST_TIMEOUT_MS),
      };
      S.reqs[req] = entry;
      if (!raw(frame)) { clearTimeout(entry.timer); delete S.reqs[req]; reject({ code: 'disconnected' }); }
    });
  }

  // ---------------------------------------------------------------- inbound frames
  function onFrame(m) {
    switch (m.type) {
      case 'welcome': return onWelcome(m);
      case 'ack':
      case 'error':
        if (S.ping && m.req === S.ping.req) { S.ping = null; return; }
        var p = m.req != null && S.reqs[m.req];
        if (p) {
          delete S.reqs[m.req]; clearTimeout(p.timer);
          if (m.type === 'ack') p.resolve(m); else p.reject(m);
        } else if (m.type === 'error' && window.console) console.debug('switchboard:', m.code, m.message);
        return;
      case 'event': return onEvent(m);
      case 'queue': {
        var q = conv(m.conversation_id);
        q.queue = { position: m.position, eta_ms: m.eta_ms };
        return render();
      }
      case 'leave_message': {
        // Waited long: offer the offline form beside the queue (the chat stays queued).
        conv(m.conversation_id).leaveMessage = true;
        return render();
      }
      case 'typing': {
        if (!m.from || m.from.role === 'customer') return;
        var tc = conv(m.conversation_id);
        tc.typing = m.on ? { name: m.from.name || t('anAgent'), until: Date.now() + 8000 } : null;
        render();
        if (m.on) setTimeout(render, 8100);
        return;
      }
      case 'read': {
        if (!m.from || m.from.role === 'customer') return;
        var r = conv(m.conversation_id);
        if (m.seq > r.readSeq) { setRead(r, m.seq); render(); }
        return;
      }
    }
  }

  function onWelcome(m) {
    S.welcomed = true; S.attempt = 0;
    if (m.session) put(local, 'session', m.session);
    S.visitorId = m.visitor_id || null;
    applyOnline(m);
    if (TOPIC) askPresence(); // the welcome's online counts any agent
    var list = m.conversations || [], listed = {};
    list.forEach(function (s) { listed[s.conversation_id] = 1; });
    // A conversation we knew as open but the hub no longer lists has ended meanwhile:
    // history brings its `closed` event.
    for (var id in S.convs) {
      var k = S.convs[id];
      if (!listed[id] && k.state !== 'closed') { k.stale = true; list.push({ conversation_id: id, state: k.state }); }
    }
    var waiting = list.length;
    list.forEach(function (s) {
      var c = conv(s.conversation_id);
      if (listed[c.id]) { c.state = s.state || c.state; c.stale = false; }
      if (s.survey) put(local, 'survey:' + c.id, s.survey);
      if (!S.current || (S.convs[S.current].state === 'closed' && c.state !== 'closed')) S.current = c.id;
    });
    setConn('open');
    if (!waiting) { synced(); return; }
    list.forEach(function (s) {
      fetchHistory(conv(s.conversation_id), function () { if (--waiting === 0) synced(); });
    });
  }

  function synced() {
    S.synced = true;
    // A start whose ack was lost: if its conversation exists, its text is (or is not) there.
    var oc = openConv();
    S.outbox = S.outbox.filter(function (it) {
      if (!it.start || it.conv || !oc) return true;
      var first = oc.events.filter(function (e) { return e.kind === 'message' && e.from && e.from.role === 'customer'; })[0];
      if (first && first.text === it.text) return false;
      it.start = false; it.conv = oc.id;
      return true;
    });
    saveOutbox();
    flush();
    markRead();
    render(true); // after a reload the log opens at its end
  }

  // ---------------------------------------------------------------- ordering
  function onEvent(ev) {
    if (typeof ev.seq !== 'number' || !ev.conversation_id) return;
    var c = conv(ev.conversation_id);
    if (ev.seq <= c.applied || c.buffer[ev.seq]) return;
    c.buffer[ev.seq] = ev; c.buffered++;
    drain(c);
    if (c.buffered) fetchHistory(c); // a gap: history fills it, the buffer waits
    render();
  }

  function drain(c) {
    var ev;
    while ((ev = c.buffer[c.applied + 1])) {
      delete c.buffer[ev.seq]; c.buffered--;
      apply(c, ev);
    }
  }

  function fetchHistory(c, done) {
    if (done) (c.waiters = c.waiters || []).push(done);
    if (c.historyBusy || !S.welcomed) return;
    c.historyBusy = true;
    var from = c.applied;
    request({ type: 'history', conversation_id: c.id, after_seq: from, limit: 200 }).then(function (ack) {
      c.historyBusy = false;
      var evs = (ack.events || []).filter(function (e) { return e.seq > c.applied; })
        .sort(function (a, b) { return a.seq - b.seq; });
      // History is complete for what this client may see: its events are applied in order,
      // even across seqs it never receives (internal notes).
      evs.forEach(function (e) { apply(c, e); });
      for (var k in c.buffer) if (+k <= c.applied) { delete c.buffer[k]; c.buffered--; }
      // Nothing more to see below the buffer: what it waits for is hidden from us.
      if (!ack.more && !evs.length && c.buffered) flushBuffer(c);
      drain(c);
      render();
      if (ack.more || c.buffered) fetchHistory(c);
      else finishHistory(c);
    }, function (err) {
      c.historyBusy = false;
      if (err.code === 'disconnected') return; // resumed after reconnect
      if (err.code === 'unavailable' || err.code === 'rate_limited' || err.code === 'timeout') {
        setTimeout(function () { fetchHistory(c); }, 1000 + Math.random() * 1000);
      } else { flushBuffer(c); render(); finishHistory(c); } // refused: nothing fills the gap
    });
  }

  function flushBuffer(c) {
    Object.keys(c.buffer).map(Number).sort(function (a, b) { return a - b; }).forEach(function (s) {
      var e = c.buffer[s]; delete c.buffer[s]; c.buffered--; apply(c, e);
    });
  }

  function finishHistory(c) {
    var w = c.waiters || [];
    c.waiters = [];
    w.forEach(function (f) { f(); });
  }

  // The agent's read position: from `read` frames (kept across reloads) and replies.
  function setRead(c, seq) {
    if (!(seq > c.readSeq)) return;
    c.readSeq = seq;
    put(local, 'read:' + c.id, String(seq));
  }

  function apply(c, ev) {
    c.applied = ev.seq;
    c.events.push(ev);
    switch (ev.kind) {
      case 'message':
        if (ev.from && ev.from.role === 'customer') {
          S.outbox = S.outbox.filter(function (it) {
            return !(it.cmid === ev.client_msg_id || (it.conv === c.id && it.seq === ev.seq) ||
              (it.start && ev.seq === 1 && it.text === ev.text));
          });
          saveOutbox();
        } else {
          c.typing = null;
          // An agent who writes has seen what came before: history alone restores "Read".
          if (ev.from && ev.from.role === 'agent') setRead(c, ev.seq - 1);
        }
        break;
      case 'joined':
        c.agent = ev.agent; c.state = 'assigned'; c.queue = null; break;
      case 'left':
        if (c.agent && ev.agent && c.agent.id === ev.agent.id) c.agent = null;
        break;
      case 'closed':
        c.state = 'closed'; c.closed = ev; c.queue = null; c.typing = null;
        S.outbox.forEach(function (it) { if (it.conv === c.id && it.state !== 'stored') { it.state = 'failed'; it.error = 'ended'; } });
        saveOutbox();
        break;
    }
    if (!S.current) S.current = c.id;
    if (ev.kind === 'message' && !mine(ev)) notify();
  }

  function mine(ev) { return ev.from && ev.from.role === 'customer'; }

  // ---------------------------------------------------------------- sending
  function send(text) {
    text = String(text || '').trim();
    if (!text) return;
    var c = cur();
    var it = { cmid: randomId('m-'), text: text.slice(0, MAX_TEXT), ts: Date.now(), conv: null, start: false, state: 'queued' };
    if (c && c.state !== 'closed') it.conv = c.id;
    else {
      var oc = openConv();
      if (oc) { it.conv = oc.id; S.current = oc.id; }
      else if (!S.outbox.some(function (o) { return o.start && o.state !== 'failed'; })) it.start = true;
    }
    S.outbox.push(it);
    saveOutbox();
    typing(false);
    render(true);
    flush();
  }

  function flush() {
    if (!S.welcomed || !S.synced) return;
    for (var i = 0; i < S.outbox.length; i++) {
      var it = S.outbox[i];
      if (it.state !== 'queued') continue;
      if (!it.conv && !it.start) {
        var oc = openConv();
        if (oc) it.conv = oc.id; else return; // waits for the start ahead of it
      }
      if (it.start) { if (!S.startInFlight) sendStart(it); return; }
      sendMessage(it);
    }
  }

  function sendStart(it) {
    S.startInFlight = true;
    it.state = 'sending';
    var f = { type: 'start', text: it.text, metadata: { page: location.href.slice(0, 500), referrer: document.referrer.slice(0, 500) } };
    if (TOPIC) f.topic = TOPIC;
    request(f).then(function (ack) {
      S.startInFlight = false;
      var c = conv(ack.conversation_id);
      if (ack.survey) put(local, 'survey:' + c.id, ack.survey);
      if (c.state === 'closed') c.state = 'queued';
      S.current = c.id;
      it.start = false; it.conv = c.id; it.seq = ack.seq || 1; it.state = 'stored';
      if (c.applied >= it.seq) S.outbox.splice(S.outbox.indexOf(it), 1);
      S.outbox.forEach(function (o) { if (!o.conv && !o.start && o.state === 'queued') o.conv = c.id; });
      saveOutbox();
      fetchHistory(c); // in case the live seq 1 went elsewhere
      render(); flush();
    }, function (err) {
      S.startInFlight = false;
      if (err.code === 'disconnected') return; // resent after reconnect
      if (err.code === 'conflict') { it.state = 'queued'; drop('conversation exists'); return; } // learn it from welcome
      if (err.code === 'unavailable' && (err.reason === 'queue_full' || err.reason === 'closed')) {
        // Too many chats wait already, or the topic is out of hours: offer the offline
        // form, with what was typed.
        if (err.reason === 'closed') S.closedMessage = err.message || null;
        S.outbox.splice(S.outbox.indexOf(it), 1);
        S.offlineDraft = it.text;
        S.online = false;
        saveOutbox(); render();
        return;
      }
      retryOrFail(it, err);
    });
    saveOutbox();
  }

  function sendMessage(it) {
    it.state = 'sending';
    var frame = { type: 'message', conversation_id: it.conv, text: it.text, client_msg_id: it.cmid };
    if (it.attachment) frame.attachment = it.attachment.id;
    request(frame).then(function (ack) {
      it.state = 'stored'; it.seq = ack.seq;
      var c = S.convs[it.conv];
      // Without echo the ack stands for the event (after every event below it): rebuilt and
      // taken like a live one. No `ts` (a resend's ack): the event comes, or history brings it.
      if (typeof ack.ts === 'number') onEvent(ownEvent(it, ack));
      if (c && c.applied >= ack.seq) { var i = S.outbox.indexOf(it); if (i >= 0) S.outbox.splice(i, 1); }
      saveOutbox(); render();
    }, function (err) {
      if (err.code === 'disconnected') return;
      retryOrFail(it, err);
    });
    saveOutbox(); render();
  }

  function ownEvent(it, ack) {
    var ev = { type: 'event', conversation_id: it.conv, seq: ack.seq, ts: ack.ts, kind: 'message',
      from: { role: 'customer', id: S.visitorId }, text: it.text, client_msg_id: it.cmid };
    if (it.attachment) ev.attachment = it.attachment;
    return ev;
  }

  function retryOrFail(it, err) {
    if (err.code === 'unavailable' || err.code === 'rate_limited' || err.code === 'timeout') {
      it.state = 'queued';
      setTimeout(flush, 1000 + Math.random() * 2000);
    } else {
      it.state = 'failed';
      it.error = err.code === 'too_large' ? 'tooLong' : 'notSent'; // keys of the texts
    }
    saveOutbox(); render();
  }

  function typing(on) {
    var c = cur();
    clearTimeout(S.typingTimer);
    if (!c || c.state === 'closed' || !S.welcomed) { S.typingOn = false; return; }
    var now = Date.now();
    if (on) {
      if (!S.typingOn || now - S.typingSentAt > 4000) {
        S.typingOn = true; S.typingSentAt = now;
        raw({ type: 'typing', conversation_id: c.id, on: true });
      }
      S.typingTimer = setTimeout(function () { typing(false); }, 3000);
    } else if (S.typingOn) {
      S.typingOn = false;
      raw({ type: 'typing', conversation_id: c.id, on: false });
    }
  }

  function visible() { return S.open && document.visibilityState === 'visible'; }

  function markRead() {
    var c = cur();
    if (!c || !visible()) return;
    if (c.applied > c.seen) { c.seen = c.applied; put(local, 'seen:' + c.id, String(c.seen)); }
    if (S.welcomed && c.applied > c.sentRead) {
      c.sentRead = c.applied;
      raw({ type: 'read', conversation_id: c.id, seq: c.applied });
    }
  }

  function unread() {
    var n = 0;
    for (var id in S.convs) {
      var c = S.convs[id];
      c.events.forEach(function (e) { if (e.kind === 'message' && !mine(e) && e.seq > c.seen) n++; });
    }
    return n;
  }

  function notify() { if (visible()) setTimeout(markRead, 0); }

  // ---------------------------------------------------------------- files
  // A file goes up over HTTP with the visitor's session token, then a `message` names it
  // (docs/protocol.md, "Files and images"). Its bytes come back through short-lived links
  // the hub signs: asked for when shown, and again once expired.
  var INLINE = { 'image/png': 1, 'image/jpeg': 1, 'image/gif': 1, 'image/webp': 1 };
  var links = {};

  function fileApi(path, init) {
    init = init || {};
    init.headers = init.headers || {};
    init.headers.Authorization = 'Bearer ' + (get(local, 'session') || '');
    return fetch(HUB + path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (!res.ok) throw { code: body.code || 'unavailable', message: body.message };
        return body;
      });
    });
  }

  function upload(file) {
    var c = cur();
    if (!c || c.state === 'closed' || !file) return;
    var up = { name: file.name || 'file' };
    S.uploads.push(up); S.fileError = null; render(true);
    fileApi('/v1/conversations/' + encodeURIComponent(c.id) + '/attachments?name=' + encodeURIComponent(up.name),
      { method: 'POST', headers: { 'Content-Type': file.type || 'application/octet-stream' }, body: file }).then(function (a) {
      S.uploads.splice(S.uploads.indexOf(up), 1);
      links[c.id + '/' + a.id] = { url: a.url, expires_at: a.expires_at };
      S.outbox.push({ cmid: randomId('m-'), text: '', ts: Date.now(), conv: c.id, start: false, state: 'queued',
        attachment: { id: a.id, name: a.name, size: a.size, type: a.type } });
      saveOutbox(); render(true); flush();
    }, function (err) {
      S.uploads.splice(S.uploads.indexOf(up), 1);
      S.fileError = err.code === 'too_large' ? t('fileTooLarge') : err.code === 'bad_request' ? t('fileType')
        : t('fileFailed', { code: err.code || 'network' });
      render();
    });
  }

  function fileLink(conv, id) {
    var known = links[conv + '/' + id];
    if (known && known.expires_at - Date.now() > 60000) return Promise.resolve(HUB + known.url);
    return fileApi('/v1/conversations/' + encodeURIComponent(conv) + '/attachments/' + encodeURIComponent(id)).then(function (a) {
      links[conv + '/' + id] = { url: a.url, expires_at: a.expires_at };
      return HUB + a.url;
    });
  }

  function fileSize(n) {
    return n < 1024 ? num(n) + ' B' : n < 1048576 ? num(Math.round(n / 1024)) + ' KB' : num(Math.round(n / 104857.6) / 10) + ' MB';
  }

  // A message's file: an image shown inline, anything else a link that downloads it.
  function fileNode(conv, a) {
    var label = a.name + ' (' + fileSize(a.size) + ')';
    function gone(n) { n.replaceWith(h('div', { class: 'fgone', text: t('fileGone', { name: a.name }) })); }
    if (INLINE[a.type]) {
      var img = h('img', { class: 'fimg', alt: a.name, title: label, 'data-testid': 'sb-attachment-image' }), retried = false;
      var show = function () { fileLink(conv, a.id).then(function (u) { img.src = u; }, function () { gone(img); }); };
      img.addEventListener('error', function () {
        if (retried) { gone(img); return; }
        retried = true; delete links[conv + '/' + a.id]; show();
      });
      img.addEventListener('load', function () { if (stick) el.log.scrollTop = el.log.scrollHeight; });
      show();
      return img;
    }
    var link = h('a', { class: 'flink', href: '#', dir: 'auto', 'data-testid': 'sb-attachment-link' });
    link.innerHTML = CLIP; // static markup, no user data
    link.appendChild(document.createTextNode(' ' + label));
    link.addEventListener('click', function (e) {
      e.preventDefault();
      fileLink(conv, a.id).then(function (u) {
        var go = h('a', { href: u, download: a.name, rel: 'noopener' });
        root.appendChild(go); go.click(); go.remove();
      }, function () { gone(link); });
    });
    return link;
  }

  // ---------------------------------------------------------------- view
  var CSS =
    ':host{all:initial}' +
    '*{box-sizing:border-box;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}' +
    '.launch{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;border:0;background:var(--c);color:#fff;cursor:pointer;box-shadow:0 6px 24px rgba(0,0,0,.25);z-index:2147483000;display:flex;align-items:center;justify-content:center;transition:transform .15s}' +
    '.launch:hover{transform:scale(1.06)}.launch:focus-visible{outline:3px solid #fbbf24;outline-offset:3px}' +
    '.launch svg{width:28px;height:28px;fill:currentColor}.av svg{width:18px;height:18px;fill:#fff}' +
    '.badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#dc2626;color:#fff;font:700 12px/22px system-ui,sans-serif;text-align:center;border:2px solid #fff}' +
    '.panel{position:fixed;right:20px;bottom:92px;width:370px;height:min(600px,calc(100vh - 112px));background:#fff;border-radius:16px;box-shadow:0 12px 48px rgba(0,0,0,.28);display:flex;flex-direction:column;overflow:hidden;z-index:2147483000;color:#111827;font-size:14px}' +
    '.panel[hidden]{display:none}' +
    'header{background:var(--c);color:#fff;padding-block:14px 12px;padding-inline:18px 14px;display:flex;align-items:center;gap:10px}' +
    '.av{width:36px;height:36px;border-radius:50%;background:rgba(255,255,255,.25);display:flex;align-items:center;justify-content:center;font-weight:700;flex:none}' +
    '.hd{flex:1;min-width:0}.title{font-weight:700;font-size:16px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;text-align:-webkit-match-parent;text-align:match-parent}' +
    '.sub{font-size:12px;opacity:.9;display:flex;align-items:center;gap:6px}' +
    '.dot{width:8px;height:8px;border-radius:50%;background:#fbbf24}.dot.open{background:#34d399}' +
    '.ib{background:transparent;border:0;color:inherit;cursor:pointer;border-radius:8px;padding:6px 8px;font-size:13px}' +
    '.ib:hover{background:rgba(255,255,255,.18)}.ib:focus-visible{outline:2px solid #fff}' +
    '.x{font-size:22px;line-height:1;padding:2px 8px}' +
    '.info{background:#eef2ff;color:#3730a3;padding:8px 16px;font-size:13px;border-bottom:1px solid #e0e7ff}' +
    '.info[hidden]{display:none}' +
    '.log{flex:1;overflow-y:auto;padding:16px 14px;display:flex;flex-direction:column;gap:8px;background:#f9fafb}' +
    '.empty{margin:auto;text-align:center;color:#6b7280;padding:24px;line-height:1.5}' +
    '.m{display:flex;flex-direction:column;max-width:82%;align-self:flex-start}' +
    '.m.me{align-self:flex-end;align-items:flex-end}' +
    '.b{padding:9px 13px;border-radius:16px;background:#fff;border:1px solid #e5e7eb;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere;line-height:1.4}' +
    '.me .b{background:var(--c);color:#fff;border-color:transparent;border-end-end-radius:4px}' +
    '.m:not(.me) .b{border-end-start-radius:4px}' +
    '.meta{font-size:11px;color:#6b7280;margin:3px 4px 0}' +
    '.m[data-state=failed] .meta{color:#dc2626}.m[data-state=sending] .b{opacity:.7}' +
    '.sys{align-self:center;font-size:12px;color:#4b5563;background:#eef0f3;border-radius:10px;padding:4px 10px;text-align:center;max-width:90%}' +
    '.typing{padding:0 16px 6px;font-size:12px;color:#6b7280;min-height:18px;background:#f9fafb}' +
    '.typing span{display:inline-block;animation:sbp 1.2s infinite}' +
    '@keyframes sbp{50%{opacity:.3}}' +
    'form.comp{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff;align-items:flex-end}' +
    // What people type runs in its own direction (per paragraph), an empty field in the widget's.
    'textarea,input{font:inherit;color:inherit;border:1px solid #d1d5db;border-radius:10px;padding:9px 11px;width:100%;background:#fff;unicode-bidi:plaintext}' +
    'textarea:focus,input:focus{outline:2px solid var(--c);outline-offset:-1px;border-color:transparent}' +
    '.comp textarea{resize:none;height:42px;max-height:120px;font-size:16px}' +
    '.send{border:0;border-radius:10px;background:var(--c);color:#fff;font-weight:600;padding:0 16px;height:42px;cursor:pointer}' +
    '.send:disabled{opacity:.5;cursor:default}.send:focus-visible,.star:focus-visible,.ib:focus-visible{outline:2px solid #fbbf24;outline-offset:2px}' +
    '.card{background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:14px;display:flex;flex-direction:column;gap:10px;align-self:stretch}' +
    '.card h3{margin:0;font-size:15px}.card p{margin:0;color:#4b5563;line-height:1.45}' +
    'label{display:flex;flex-direction:column;gap:4px;font-size:12px;color:#374151;font-weight:600}' +
    'label input,label textarea{font-size:16px;font-weight:400}' +
    '.stars{display:flex;gap:4px}' +
    '.star{border:0;background:none;font-size:28px;line-height:1;color:#d1d5db;cursor:pointer;padding:2px}' +
    '.star.on{color:#f59e0b}' +
    '.nps{display:grid;grid-template-columns:repeat(11,1fr);gap:3px}' +
    '.npsb{border:1px solid #d1d5db;background:#fff;border-radius:6px;padding:6px 0;font-size:14px;cursor:pointer}' +
    '.npsb.on{background:#1d4ed8;border-color:#1d4ed8;color:#fff}.npsb:focus-visible{outline:2px solid #fbbf24;outline-offset:2px}' +
    '.npsl{display:flex;justify-content:space-between;font-size:12px;color:#6b7280}' +
    '.err{color:#dc2626;font-size:12px}' +
    '.ok{color:#065f46;background:#ecfdf5;border-color:#a7f3d0}' +
    '.link{background:none;border:0;color:var(--c);font-weight:600;cursor:pointer;padding:4px;text-decoration:underline}' +
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}' +
    '.clip{border:1px solid #d1d5db;background:#fff;border-radius:10px;height:42px;width:42px;flex:none;cursor:pointer;color:#374151;display:flex;align-items:center;justify-content:center}' +
    '.flink svg{vertical-align:-3px}' +
    '.clip:disabled{opacity:.5;cursor:default}.clip:focus-visible{outline:2px solid #fbbf24;outline-offset:2px}' +
    '.fimg{display:block;max-width:100%;max-height:220px;border-radius:10px;cursor:zoom-in;background:#e5e7eb;min-height:40px;min-width:40px}' +
    '.flink{color:inherit;font-weight:600;text-decoration:underline;word-break:break-all}' +
    '.fgone{font-style:italic;opacity:.8}.b .fimg+span,.b .flink+span{display:block;margin-top:6px}' +
    '.upl{padding:0 16px 6px;font-size:12px;color:#4b5563;background:#f9fafb}.upl.e{color:#dc2626}' +
    // Right to left: the launcher and the panel in the bottom-left corner; inside, the flex
    // rows and columns (header, bubbles: the customer's own at the end, now the left) and
    // the logical properties above mirror by themselves.
    '[dir=rtl] .launch,[dir=rtl] .panel{right:auto;left:20px}[dir=rtl] .badge{right:auto;left:-4px}' +
    '@media (max-width:520px){.panel,[dir=rtl] .panel{right:0;left:0;bottom:0;width:100vw;height:100%;max-height:none;border-radius:0}.panel:not([hidden])~.launch{display:none}}';

  var host, root, el = {}, nodes = {}, shownConv = null;
  var CLIP = '<svg viewBox=\"0 0 24 24\" width=\"18\" height=\"18\" aria-hidden=\"true\" focusable=\"false\"><path fill=\"currentColor\" d=\"M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z\"/></svg>';
  var ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';

  function h(tag, attrs, kids) {
    var n = document.createElement(tag);
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (v == null || v === false) continue;
      if (k === 'text') n.textContent = v;
      else if (k.slice(0, 2) === 'on') n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : v);
    }
    (kids || []).forEach(function (c) { if (c) n.appendChild(c); });
    return n;
  }

  function build() {
    host = h('div', { id: 'switchboard-widget' });
    host.style.cssText = 'position:static;all:initial';
    root = host.attachShadow({ mode: 'open' });
    var style = h('style', { text: CSS });
    root.appendChild(style);
    // lang and dir on the widget's root: the page's own (maybe another language, maybe
    // right to left) must not leak in. Text from people or the hub gets dir=auto.
    var wrap = h('div', { style: '--c:' + COLOR, lang: LOC.tag, dir: LOC.dir, 'data-testid': 'sb-root' });
    el.panel = h('div', { class: 'panel', role: 'dialog', 'aria-label': title(), hidden: true, 'data-testid': 'sb-panel' });
    wrap.addEventListener('keydown', function (e) { if (e.key === 'Escape' && S.open) { e.preventDefault(); close(); } });
    el.avatar = h('div', { class: 'av', 'aria-hidden': 'true', text: '?' });
    el.title = h('div', { class: 'title', 'data-testid': 'sb-agent', dir: 'auto', text: title() });
    el.dot = h('span', { class: 'dot' });
    el.sub = h('span', { 'data-testid': 'sb-conn', text: '' });
    el.end = h('button', { class: 'ib', type: 'button', 'data-testid': 'sb-end', 'aria-label': t('endLabel'), text: t('end'), onclick: endChat });
    el.x = h('button', { class: 'ib x', type: 'button', 'data-testid': 'sb-close', 'aria-label': t('closeWindow'), text: '\u00d7', onclick: close });
    el.panel.appendChild(h('header', {}, [el.avatar, h('div', { class: 'hd' }, [el.title, h('div', { class: 'sub' }, [el.dot, el.sub])]), el.end, el.x]));
    el.info = h('div', { class: 'info', 'data-testid': 'sb-queue', role: 'status', hidden: true });
    el.log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': t('log'), 'data-testid': 'sb-messages', tabindex: '0' });
    // Whether the log follows new lines: true until the reader scrolls up, and again once
    // they scroll back to the end. (Measured on scroll, not at render: a log that grew
    // while hidden or before layout still opens at its end.)
    el.log.addEventListener('scroll', function () { stick = el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 60; });
    el.typing = h('div', { class: 'typing', 'data-testid': 'sb-typing', 'aria-live': 'polite' });
    el.input = h('textarea', { 'aria-label': t('input'), placeholder: t('placeholder'), maxlength: String(MAX_TEXT), rows: '1', 'data-testid': 'sb-input',
      oninput: function () { typing(!!el.input.value.trim()); },
      onkeydown: function (e) { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); } } });
    el.send = h('button', { class: 'send', type: 'submit', 'data-testid': 'sb-send', 'aria-label': t('sendLabel'), text: t('send') });
    el.file = h('input', { type: 'file', hidden: true, 'data-testid': 'sb-file', accept: 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain',
      onchange: function () { var f = el.file.files && el.file.files[0]; el.file.value = ''; upload(f); } });
    el.clip = h('button', { class: 'clip', type: 'button', 'data-testid': 'sb-attach', 'aria-label': t('attach'), title: t('attach'),
      onclick: function () { el.file.click(); } });
    el.clip.innerHTML = CLIP; // static markup, no user data
    el.comp = h('form', { class: 'comp', onsubmit: function (e) { e.preventDefault(); submit(); } }, [el.clip, el.file, el.input, el.send]);
    el.upl = h('div', { class: 'upl', role: 'status', 'data-testid': 'sb-upload', hidden: true });
    el.panel.appendChild(el.info);
    el.panel.appendChild(el.log);
    el.panel.appendChild(el.typing);
    el.panel.appendChild(el.upl);
    el.panel.appendChild(el.comp);
    el.launch = h('button', { class: 'launch', type: 'button', 'data-testid': 'sb-launcher', 'aria-label': t('open'), 'aria-expanded': 'false', onclick: function () { S.open ? close() : open(); } });
    el.launch.innerHTML = ICON; // static markup, no user data
    el.badge = h('span', { class: 'badge', 'data-testid': 'sb-unread', hidden: true, 'aria-hidden': 'true' });
    el.launch.appendChild(el.badge);
    el.live = h('div', { class: 'sr', 'aria-live': 'assertive' });
    wrap.appendChild(el.panel);
    wrap.appendChild(el.launch);
    wrap.appendChild(el.live);
    root.appendChild(wrap);
    document.body.appendChild(host);
  }

  function submit() {
    var v = el.input.value;
    if (!v.trim()) return;
    el.input.value = '';
    send(v);
  }

  function open() {
    S.open = true;
    if (!root) return; // shown once built
    // While closed the log has no height to keep at the bottom: opening shows its end.
    forceScroll = true;
    paint();
    forceScroll = false;
    markRead();
    var target = el.panel.querySelector('[data-autofocus]') || el.input;
    if (target && !target.disabled) target.focus();
  }
  function close() {
    var had = S.open;
    S.open = false;
    typing(false);
    render();
    if (had && root) el.launch.focus();
  }

  // "End chat" asks first: a misclick must not end a conversation the customer needs.
  function endChat() {
    var c = cur();
    if (!c || c.state === 'closed') return;
    S.confirmEnd = c.id;
    render(true);
  }

  function endCard(c) {
    var yes = h('button', { class: 'send', type: 'button', 'data-testid': 'sb-end-confirm', text: t('endYes'),
      onclick: function () {
        yes.disabled = true;
        request({ type: 'close', conversation_id: c.id, resolution: 'customer_left', tags: [] }).then(function () {
          S.confirmEnd = null; render();
        }, function () { yes.disabled = false; });
      } });
    return h('div', { class: 'card', role: 'alertdialog', 'aria-label': t('endAsk'), 'data-testid': 'sb-end-card' }, [
      h('h3', { text: t('endAsk') }),
      h('p', { text: t('endText') }),
      yes,
      h('button', { class: 'link', type: 'button', 'data-testid': 'sb-end-cancel', 'data-autofocus': '', text: t('endNo'),
        onclick: function () { S.confirmEnd = null; render(); el.input.focus(); } }),
    ]);
  }

  function clock(ts) {
    try { return new Date(ts).toLocaleTimeString(LOC.tag, { hour: '2-digit', minute: '2-digit' }); } catch (e) { return ''; }
  }
  function waitText(ms) {
    if (!(ms > 0)) return t('waitNow');
    var min = Math.round(ms / 60000);
    return min < 1 ? t('waitUnder') : t('waitMin', { n: min });
  }
  function who(x) { return x == null ? '' : typeof x === 'object' ? (x.name || x.id || '') : String(x); }

  // A transfer names its target agent by id only: the name comes from that agent's later
  // `joined`; until then, "another agent".
  function transferTarget(ev, c) {
    if (ev.to_agent && typeof ev.to_agent === 'object') return who(ev.to_agent);
    var j = c && c.events.filter(function (e) { return e.kind === 'joined' && e.seq > ev.seq && e.agent && e.agent.id === ev.to_agent; })[0];
    return j && j.agent.name ? j.agent.name : t('anotherAgent');
  }

  function describe(ev, c) {
    switch (ev.kind) {
      case 'joined': return t('joined', { name: who(ev.agent) });
      case 'left': return ev.reason === 'transferred' ? null : t('left', { name: who(ev.agent) });
      case 'transfer': return ev.to_topic ? t('toTeam', { topic: ev.to_topic }) : t('toAgent', { name: transferTarget(ev, c) });
      case 'closed': return ev.ticket_id ? t('endedTicket', { ticket: ev.ticket_id }) : t('ended');
    }
    return null;
  }

  function msgNode(key, text, role, conv, attachment) {
    var n = h('div', { class: 'm' + (role === 'customer' ? ' me' : ''), 'data-testid': 'sb-msg', 'data-role': role, 'data-key': key });
    var b = h('div', { class: 'b', dir: 'auto' });
    if (attachment) {
      b.appendChild(fileNode(conv, attachment));
      if (text) b.appendChild(h('span', { text: text }));
    } else b.textContent = text;
    n.appendChild(b);
    n.appendChild(h('div', { class: 'meta' }));
    return n;
  }

  function setMeta(n, parts, state) {
    var meta = n.lastChild, text = parts.filter(Boolean).join(' \u00b7 ');
    if (meta.textContent !== text) meta.textContent = text;
    if (n.getAttribute('data-state') !== state) n.setAttribute('data-state', state);
  }

  var STATE_LABEL = { sending: 'sending', stored: 'sent', read: 'read', failed: 'notSent' }; // keys of the texts

  function renderLog(c) {
    if (shownConv !== (c && c.id)) {
      for (var k0 in nodes) nodes[k0].remove();
      nodes = {}; shownConv = c && c.id;
    }
    var want = [];
    if (c) c.events.forEach(function (ev) {
      if (ev.kind === 'message') want.push(['e' + ev.seq, ev]);
      else if (describe(ev)) want.push(['e' + ev.seq, ev]);
    });
    S.outbox.forEach(function (it) {
      if ((c && it.conv === c.id) || (!it.conv && (!c || c.state === 'closed' || it.start))) want.push(['p' + it.cmid, it]);
    });
    var keep = {}, prev = null;
    want.forEach(function (w) {
      var key = w[0], x = w[1], n = nodes[key];
      if (!n) {
        if (key[0] === 'p') n = msgNode(key, x.text, 'customer', x.conv, x.attachment);
        else if (x.kind === 'message') n = msgNode(key, x.text, x.from && x.from.role || 'system', c.id, x.attachment);
        else n = h('div', { class: 'sys', 'data-testid': 'sb-system', 'data-kind': x.kind, text: describe(x, c) });
        nodes[key] = n;
      }
      if (key[0] === 'e' && x.kind !== 'message') {
        var said = describe(x, c);
        if (n.textContent !== said) n.textContent = said;
      } else if (key[0] === 'p') {
        var st = x.state === 'stored' ? 'stored' : x.state === 'failed' ? 'failed' : 'sending';
        setMeta(n, [clock(x.ts), t(x.state === 'failed' ? x.error || 'notSent' : STATE_LABEL[st])], st);
        n.setAttribute('data-cmid', x.cmid);
      } else if (x.kind === 'message') {
        n.setAttribute('data-seq', x.seq);
        if (mine(x)) {
          var s2 = x.seq <= c.readSeq ? 'read' : 'stored';
          setMeta(n, [clock(x.ts), t(STATE_LABEL[s2])], s2);
          if (x.client_msg_id) n.setAttribute('data-cmid', x.client_msg_id);
        } else setMeta(n, [who(x.from), clock(x.ts)], 'stored');
      }
      keep[key] = 1;
      var next = prev ? prev.nextSibling : el.log.firstChild;
      if (next !== n) el.log.insertBefore(n, next);
      prev = n;
    });
    for (var k in nodes) if (!keep[k]) { nodes[k].remove(); delete nodes[k]; }
    var empty = el.log.querySelector('.empty');
    if (!want.length && !el.log.querySelector('.card')) {
      if (!empty) el.log.appendChild(h('div', { class: 'empty', text: t('empty') }));
    } else if (empty) empty.remove();
    pinBottom = stick || forceScroll; // applied at the end of paint, once the panel is laid out
  }

  // Cards below the log: offline form, rating, confirmation.
  var card = null, cardKind = '';
  function setCard(kind, make) {
    if (cardKind === kind && card) return card;
    var hadFocus = card && root.activeElement && card.contains(root.activeElement);
    if (card) card.remove();
    card = make ? make() : null; cardKind = make ? kind : '';
    if (card) {
      el.log.appendChild(card);
      el.log.scrollTop = el.log.scrollHeight;
      if (hadFocus || (S.open && kind === 'offline')) { var f = card.querySelector('input,textarea,button'); if (f) f.focus(); }
    }
    return card;
  }

  // The offline form; `c` is a queued chat the customer may give up for a message.
  function offlineCard(c) {
    var name = h('input', { name: 'name', autocomplete: 'name', 'data-testid': 'sb-offline-name', value: ds.name || '' });
    var email = h('input', { name: 'email', type: 'email', required: true, autocomplete: 'email', dir: 'ltr', 'data-testid': 'sb-offline-email', value: ds.email || '' });
    var text = h('textarea', { name: 'text', required: true, rows: '4', maxlength: String(MAX_TEXT), 'data-testid': 'sb-offline-text' });
    if (S.offlineDraft) { text.value = S.offlineDraft; S.offlineDraft = null; }
    var err = h('div', { class: 'err', role: 'alert', 'data-testid': 'sb-offline-error' });
    var btn = h('button', { class: 'send', type: 'submit', 'data-testid': 'sb-offline-submit', text: t('offSend') });
    var form = h('form', { class: 'card', 'data-testid': 'sb-offline-form', 'aria-label': t('offForm'),
      onsubmit: function (e) {
        e.preventDefault();
        if (!email.value.trim() || !text.value.trim()) { err.textContent = t('offMissing'); return; }
        btn.disabled = true; err.textContent = '';
        var f = { type: 'offline_message', name: name.value.trim() || undefined, email: email.value.trim(), text: text.value.trim().slice(0, MAX_TEXT) };
        if (TOPIC) f.topic = TOPIC;
        request(f).then(function (ack) {
          S.offline = { ticket: ack.ticket_id };
          if (c) {
            c.leftMessage = true;
            request({ type: 'close', conversation_id: c.id }).catch(function () { /* closes by idle timeout */ });
          }
          render();
        }, function (e2) {
          btn.disabled = false;
          err.textContent = e2.code === 'disconnected' || e2.code === 'timeout' ? t('offNoConn') : t('offFailed', { code: e2.code });
        });
      } }, [
      h('h3', { text: t(c ? 'offWait' : S.closedMessage ? 'offClosed' : 'offAway') }),
      // The hub's configured message, in whatever language it was written: as sent.
      !c && S.closedMessage ? h('p', { 'data-testid': 'sb-offline-hours', dir: 'auto', text: S.closedMessage }) : null,
      h('p', { text: t(c ? 'offTextWait' : 'offText') }),
      h('label', {}, [document.createTextNode(t('name')), name]),
      h('label', {}, [document.createTextNode(t('email')), email]),
      h('label', {}, [document.createTextNode(t('message')), text]),
      err, btn,
      c ? h('button', { class: 'link', type: 'button', 'data-testid': 'sb-keep-waiting', text: t('keepWaiting'),
        onclick: function () { c.leaveDismissed = true; render(); } }) : null]);
    name.setAttribute('data-autofocus', '');
    return form;
  }

  function ticketCard() {
    var parts = t('ticketText', { ticket: '\u0000' }).split('\u0000');
    return h('div', { class: 'card ok', role: 'status', 'data-testid': 'sb-ticket' }, [
      h('h3', { text: t('ticketTitle') }),
      h('p', {}, [document.createTextNode(parts[0]), h('strong', { 'data-testid': 'sb-ticket-id', dir: 'ltr', text: S.offline.ticket }), document.createTextNode(parts[1] || '')]),
    ]);
  }

  function rated(id) { return !!get(local, 'rated:' + id); }

  // The survey the hub announced for the conversation's topic: CSAT stars 1-5, or NPS 0-10.
  function ratingCard(c) {
    return get(local, 'survey:' + c.id) === 'nps' ? npsCard(c) : starsCard(c);
  }

  function npsCard(c) {
    var score = null, picks = [];
    var row = h('div', { class: 'nps', role: 'group', 'aria-label': t('npsScale') });
    for (var i = 0; i <= 10; i++) (function (n) {
      var b = h('button', { class: 'npsb', type: 'button', 'aria-pressed': 'false', 'data-testid': 'sb-nps-' + n, text: num(n),
        onclick: function () {
          score = n; card.enable();
          picks.forEach(function (p, j) { p.classList.toggle('on', j === n); p.setAttribute('aria-pressed', String(j === n)); });
        } });
      picks.push(b); row.appendChild(b);
    })(i);
    var scale = h('div', { class: 'npsl', 'aria-hidden': 'true' }, [h('span', { text: t('npsLow') }), h('span', { text: t('npsHigh') })]);
    var card = surveyForm(c, t('npsTitle'), [row, scale], function () { return score; });
    return card.form;
  }

  function starsCard(c) {
    var score = 0, stars = [];
    var row = h('div', { class: 'stars', role: 'group', 'aria-label': t('rateScale') });
    for (var i = 1; i <= 5; i++) (function (n) {
      var b = h('button', { class: 'star', type: 'button', 'aria-pressed': 'false', 'aria-label': t('stars', { n: n }), 'data-testid': 'sb-star-' + n, text: '\u2605',
        onclick: function () {
          score = n; card.enable();
          stars.forEach(function (s, j) { s.classList.toggle('on', j < n); s.setAttribute('aria-pressed', String(j + 1 === n)); });
        } });
      stars.push(b); row.appendChild(b);
    })(i);
    var card = surveyForm(c, t('rateTitle'), [row], function () { return score || null; });
    return card.form;
  }

  // The form around a scale: an optional comment, sending, errors, a new chat.
  function surveyForm(c, title, scale, chosen) {
    var comment = h('textarea', { rows: '2', maxlength: '2000', 'aria-label': t('comment'), placeholder: t('commentHint'), 'data-testid': 'sb-rating-comment' });
    var err = h('div', { class: 'err', role: 'alert' });
    var btn = h('button', { class: 'send', type: 'submit', disabled: true, 'data-testid': 'sb-rating-submit', text: t('rateSend') });
    var form = h('form', { class: 'card', 'data-testid': 'sb-rating', 'aria-label': t('rateLabel'),
      onsubmit: function (e) {
        e.preventDefault();
        var score = chosen();
        if (score == null) return;
        btn.disabled = true; err.textContent = '';
        var f = { type: 'rate', conversation_id: c.id, score: score };
        if (comment.value.trim()) f.comment = comment.value.trim();
        request(f).then(function () {
          put(local, 'rated:' + c.id, String(score));
          render();
        }, function (e2) { btn.disabled = false; err.textContent = e2.code === 'disconnected' ? t('rateNoConn') : t('rateFailed', { code: e2.code }); });
      } }, [h('h3', { text: title })].concat(scale, [comment, err, btn, transcriptButton(c),
      h('button', { class: 'link', type: 'button', 'data-testid': 'sb-new-chat', text: t('newChat'), onclick: newChat })]));
    return { form: form, enable: function () { btn.disabled = false; } };
  }

  function thanksCard() {
    var c = cur();
    return h('div', { class: 'card ok', 'data-testid': 'sb-rating-thanks' }, [
      h('p', { text: t('thanks') }),
      c ? transcriptButton(c) : null,
      h('button', { class: 'link', type: 'button', 'data-testid': 'sb-new-chat', text: t('newChat'), onclick: newChat }),
    ]);
  }

  // Downloads the closed chat's transcript through the short-lived link the hub signs.
  function transcriptButton(c) {
    return h('button', { class: 'link', type: 'button', 'data-testid': 'sb-transcript', text: t('transcript'),
      onclick: function () {
        request({ type: 'transcript', conversation_id: c.id }).then(function (ack) {
          if (ack.url) location.assign(HUB + ack.url);
        }, function () { /* still closing, or offline: the button stays */ });
      } });
  }

  function newChat() {
    S.current = null;
    render();
    el.input.focus();
  }

  var forceScroll = false;
  var stick = true;
  var pinBottom = false;
  var renderQueued = false;
  function render(scroll) {
    if (scroll) forceScroll = true;
    if (renderQueued || !root) return;
    renderQueued = true;
    Promise.resolve().then(function () { renderQueued = false; paint(); forceScroll = false; });
  }

  function paint() {
    var c = cur();
    // header
    var agent = c && c.agent;
    el.title.textContent = agent ? agent.name || agent.id : title();
    var initial = agent ? (agent.name || agent.id || '?').charAt(0).toUpperCase() : '';
    if (el.avatar.getAttribute('data-initial') !== initial) {
      el.avatar.setAttribute('data-initial', initial);
      if (initial) el.avatar.textContent = initial; else el.avatar.innerHTML = ICON; // static markup
    }
    var connText = S.conn === 'open' ? (agent ? 'online' : c && c.state === 'queued' ? 'waiting' : S.online === false ? 'away' : 'weOnline')
      : S.conn === 'reconnecting' ? 'reconnecting' : 'connecting';
    el.sub.textContent = t(connText);
    el.sub.setAttribute('data-state', S.conn);
    el.dot.className = 'dot' + (S.conn === 'open' && (S.online !== false || agent) ? ' open' : '');
    el.end.hidden = !(c && c.state !== 'closed');

    // queue banner
    var info = '';
    if (c && c.state === 'queued') {
      info = c.queue ? t('queue', { pos: c.queue.position, wait: waitText(c.queue.eta_ms) }) : t('queueNext');
    }
    el.info.hidden = !info;
    el.info.textContent = info;
    if (c && c.queue) { el.info.setAttribute('data-position', c.queue.position); el.info.setAttribute('data-eta', c.queue.eta_ms); }

    renderLog(c);

    // bottom area: offline form, rating, or composer
    var offline = !c && S.online === false && !S.outbox.length;
    var gaveUp = c && c.leftMessage;
    if (c && S.confirmEnd === c.id && c.state !== 'closed') setCard('end:' + c.id, function () { return endCard(c); });
    else if (S.offline && S.offline.ticket && (!c || gaveUp)) setCard('ticket', ticketCard);
    else if (offline) setCard('offline', function () { return offlineCard(null); });
    else if (c && c.state === 'queued' && c.leaveMessage && !c.leaveDismissed) setCard('leave:' + c.id, function () { return offlineCard(c); });
    else if (c && c.state === 'closed') {
      if (rated(c.id)) setCard('thanks:' + c.id, thanksCard);
      else setCard('rate:' + c.id, function () { return ratingCard(c); });
    } else setCard('', null);
    if (card && card.parentNode === el.log && el.log.lastChild !== card) el.log.appendChild(card);
    var hideComp = offline || !!(S.offline && S.offline.ticket && (!c || gaveUp)) || !!(c && c.state === 'closed' && !gaveUp);
    el.comp.hidden = hideComp;
    el.comp.style.display = hideComp ? 'none' : '';
    // Files go to a conversation: none to attach to before the first message.
    var canAttach = !!(c && c.state !== 'closed' && S.conn === 'open');
    el.clip.hidden = !canAttach;
    el.clip.style.display = canAttach ? '' : 'none';
    var upl = S.fileError || (S.uploads.length ? t('uploading', { name: S.uploads[0].name }) : '');
    el.upl.hidden = !upl;
    el.upl.textContent = upl;
    el.upl.className = 'upl' + (S.fileError ? ' e' : '');

    // typing indicator
    var ty = c && c.typing && c.typing.until > Date.now() ? c.typing : null;
    if (el.typing.getAttribute('data-on') !== String(!!ty)) {
      el.typing.textContent = '';
      if (ty) { el.typing.appendChild(document.createTextNode(t('typing', { name: ty.name }))); el.typing.appendChild(h('span', { text: '\u2026' })); }
      el.typing.setAttribute('data-on', String(!!ty));
    }

    // panel and launcher
    el.panel.hidden = !S.open;
    el.launch.setAttribute('aria-expanded', String(S.open));
    var n = unread();
    el.badge.hidden = !n || S.open;
    el.badge.textContent = n > 99 ? num(99) + '+' : num(n);
    el.launch.setAttribute('aria-label', S.open ? t('close') : n ? t('openUnread', { n: n }) : t('open'));
    host.setAttribute('data-state', S.conn);
    if (pinBottom && S.open) { el.log.scrollTop = el.log.scrollHeight; stick = true; }
  }

  function snapshot() {
    var c = cur();
    return {
      connection: S.conn, open: S.open, online: S.online, visitorId: S.visitorId, synced: S.synced,
      conversationId: c ? c.id : null, conversationState: c ? c.state : null,
      lastSeq: c ? c.applied : 0, agent: c && c.agent ? c.agent.name || c.agent.id : null,
      queue: c && c.queue ? { position: c.queue.position, eta_ms: c.queue.eta_ms } : null,
      pending: S.outbox.filter(function (it) { return it.state !== 'stored' && it.state !== 'failed'; }).length,
      failed: S.outbox.filter(function (it) { return it.state === 'failed'; }).length,
      unread: unread(),
      locale: LOC.lang, dir: LOC.dir, ready: !!root,
      messages: c ? c.events.filter(function (e) { return e.kind === 'message'; }).map(function (e) {
        return { seq: e.seq, role: e.from && e.from.role, text: e.text, client_msg_id: e.client_msg_id, attachment: e.attachment };
      }) : [],
    };
  }

  window.SwitchboardWidget = { open: open, close: close, state: snapshot, version: 1 };

  // The socket opens at once; the view is built once the language's texts are here.
  function boot() {
    connect();
    loadLocale(function () { build(); paint(); });
  }
  if (document.body) boot(); else document.addEventListener('DOMContentLoaded', boot);
})();
