// Switchboard agent console. Plain ES modules, no framework, no build step.
// Wire contract: docs/protocol.md (v1). Text from the wire is only ever set with textContent.

import { Connection, ConvLog, randomId } from './conn.js';
import { allowedHubs, resolveHub } from './hub.js';
import { $, h, fmtMs } from './dom.js';
import { initReports, loadReport } from './reports.js';
import { assignCell, initQueue } from './queue.js';
import { initCanned, updateCanned, cannedKeydown, closeCanned } from './canned.js';
import { initCannedPanel, loadCannedPanel } from './canned-manage.js';
import { agentStatusText, applyStatus, auditSection, loadAudit, paintStatus, setupStatusMenu, slaCell, tickStatus } from './desk.js';
import { historySection, historySig, loadHistory } from './history.js';
import { armPermission, initAlerts, offerAlert } from './alerts.js';
import { code, dateTime, setupPicker, t, time, timeSec, tNodes, translatePage } from './i18n.js';
import { attachmentEl, initFiles, uploadFile } from './files.js';
import { rest } from './rest.js';
import { initMessages, loadMessages, watchMessageCount } from './messages.js';

const params = new URLSearchParams(location.search);
// `?hub=` only names this page's origin or one the operator allows: the agent's token
// goes to that hub, so a link must not be able to send it anywhere else.
const { hub: HUB, refused: REFUSED_HUB } = resolveHub(params.get('hub'), location.origin, allowedHubs(document));
if (REFUSED_HUB) console.warn('switchboard console: ?hub= ignored (not an allowed origin):', REFUSED_HUB);
const WS_URL = HUB.replace(/^http/i, 'ws') + '/v1/agent/ws';
const TOKEN_KEY = 'switchboard.console.token';
const OUTBOX_KEY = 'switchboard.console.outbox';
const MONITOR_KEY = 'switchboard.console.monitored';
const POLL_MS = 3000;

const S = {
  token: null,
  conn: null,
  me: null,
  status: 'away',
  connState: 'idle',
  offers: new Map(),   // offer_id -> {offer, deadline}
  convs: new Map(),    // conversation_id -> conversation
  active: null,
  view: location.hash === '#supervisor' ? 'supervisor' : location.hash === '#reports' ? 'reports' : 'inbox',
  outbox: [],
  monitored: new Set(),
  agents: [],
  topics: new Set(),
  noteMode: false,
  typingOn: false, typingSentAt: 0, typingTimer: 0, typingConv: null,
  pollTimer: 0,
};

function loadJSON(key, d) { try { return JSON.parse(sessionStorage.getItem(key)) ?? d; } catch { return d; } }
function saveOutbox() {
  const keep = S.outbox.filter((it) => it.state === 'queued' || it.state === 'sending')
    .map(({ cmid, kind, text, conv, ts, baseSeq, sent, attachment }) => ({ cmid, kind, text, conv, ts, baseSeq, sent, attachment }));
  sessionStorage.setItem(OUTBOX_KEY, JSON.stringify(keep));
}
function saveMonitored() { sessionStorage.setItem(MONITOR_KEY, JSON.stringify([...S.monitored])); }

// ------------------------------------------------------------------ session

function boot() {
  translatePage();
  setupPicker($('lang'));
  setupPicker($('login-lang'));
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('login-token').value.trim();
    if (!token) return;
    localStorage.setItem(TOKEN_KEY, token);
    startSession(token);
  });
  $('logout').addEventListener('click', () => logout(''));
  for (const b of document.querySelectorAll('.status button[data-status]')) b.addEventListener('click', () => setStatus(b.dataset.status));
  tickStatus(S);
  $('view-inbox').addEventListener('click', () => setView('inbox'));
  $('view-messages').addEventListener('click', () => setView('messages'));
  $('view-supervisor').addEventListener('click', () => setView('supervisor'));
  $('view-reports').addEventListener('click', () => setView('reports'));
  initReports(api, apiCsv);
  initFiles({ hub: HUB, token: () => S.token });
  initMessages({ hub: HUB, token: () => S.token, toast });
  setupComposer();
  initCanned({ api, context: () => ({ conv: S.convs.get(S.active), me: S.me }), onPick: () => typing(true) });
  initCannedPanel({ hub: HUB, token: () => S.token, topics: () => [...S.topics] });
  setupDialogs();
  initAlerts($('alerts-toggle'));
  setInterval(tickOffers, 250);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') markRead(); });

  // The token is kept in localStorage: a new tab or a browser restart stays signed in;
  // Sign out (or a refused token) removes it. (Older consoles kept it per tab.)
  const token = localStorage.getItem(TOKEN_KEY) || sessionStorage.getItem(TOKEN_KEY);
  const notice = REFUSED_HUB ? t('login.hubRefused', { hub: HUB }) : '';
  if (token) startSession(token); else showLogin(notice);
}

function showLogin(message) {
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('login-token').value = '';
  $('login-token').focus();
}

function startSession(token) {
  S.token = token;
  S.outbox = loadJSON(OUTBOX_KEY, []).map((it) => ({ ...it, state: 'queued' }));
  S.monitored = new Set(loadJSON(MONITOR_KEY, []));
  $('login').hidden = true;
  $('app').hidden = false;
  armPermission();
  S.conn = new Connection({
    url: WS_URL,
    // No echo: our own message comes back as its ack (with seq and ts), not a second frame.
    hello: () => ({ type: 'hello', role: 'agent', token: S.token, echo: false }),
    onWelcome,
    onFrame,
    onState: (s) => { S.connState = s; onDisconnectMaybe(s); render(); },
    onClose: (closeCode) => {
      if (closeCode === 4401) { logout(t('login.badToken')); return false; }
      if (closeCode === 4409) { logout(t('login.removed')); return false; }
      return true;
    },
  });
  S.conn.start();
  setView(S.view);
}

function logout(message) {
  S.conn?.stop();
  S.conn = null;
  clearInterval(S.pollTimer);
  localStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(OUTBOX_KEY);
  sessionStorage.removeItem(MONITOR_KEY);
  S.me = null; S.offers.clear(); S.convs.clear(); S.active = null; S.outbox = [];
  $('offers').replaceChildren(); $('tabs').replaceChildren(); logNodes.clear();
  render();
  showLogin(message);
}

function onDisconnectMaybe(state) {
  if (state === 'open') return;
  for (const c of S.convs.values()) { c.synced = false; c.typing = null; }
  for (const it of S.outbox) if (it.state === 'sending') it.state = 'queued';
  S.typingOn = false;
}

function onWelcome(m) {
  if (!S.me) { initQueue(api, (f) => S.conn.request(f), toast); watchMessageCount(); }
  S.me = m.agent;
  applyStatus(S, m.status || 'away');
  setupStatusMenu(S, setStatus);
  $('view-supervisor').hidden = !S.me.supervisor;
  $('view-reports').hidden = !S.me.supervisor;
  if (!S.me.supervisor && S.view !== 'inbox' && S.view !== 'messages') setView('inbox');
  else if (S.view === 'reports') loadReport();
  else if (S.view === 'messages') loadMessages();
  const listed = new Set();
  for (const s of m.conversations || []) {
    listed.add(s.conversation_id);
    const c = conv(s.conversation_id);
    c.state = s.state || c.state;
    c.member = true;
  }
  for (const id of S.monitored) {
    S.conn.request({ type: 'monitor', conversation_id: id }).then(() => resync(conv(id, { monitoring: true })), () => {});
  }
  for (const c of S.convs.values()) {
    if (S.monitored.has(c.id) && !listed.has(c.id)) continue; // resynced after monitor
    if (listed.has(c.id) || c.state !== 'closed') resync(c);
  }
  render();
}

function resync(c) {
  c.synced = false;
  c.log.catchUp().then((err) => {
    if (err && (err.code === 'forbidden' || err.code === 'not_found')) { c.member = false; c.gone = true; }
    c.synced = true;
    reconcileNotes(c);
    flush();
    markRead();
    render();
  });
  if (!c.details) loadDetails(c);
}

function setStatus(status, reason) {
  if (!S.conn) return;
  const frame = reason ? { type: 'status', status, reason } : { type: 'status', status };
  S.conn.request(frame).then((ack) => { applyStatus(S, ack.status || status, reason); render(); },
    (err) => toast(err.code === 'disconnected' ? t('toast.notConnected') : t('toast.statusFailed', { code: err.code })));
}

function setView(v) {
  S.view = v === 'messages' ? v : (v === 'supervisor' || v === 'reports') && S.me?.supervisor !== false ? v : 'inbox';
  for (const view of ['inbox', 'messages', 'supervisor', 'reports']) {
    $(view).hidden = S.view !== view;
    $('view-' + view).setAttribute('aria-pressed', String(S.view === view));
  }
  if (S.view === 'reports' && S.me) loadReport();
  if (S.view === 'messages' && S.me) loadMessages();
  clearInterval(S.pollTimer);
  if (S.view === 'supervisor') { poll(); S.pollTimer = setInterval(poll, POLL_MS); }
  if (S.view === 'supervisor') loadCannedPanel();
  history.replaceState(null, '', S.view !== 'inbox' ? '#' + S.view : location.pathname + location.search);
  markRead();
}

// ------------------------------------------------------------------ frames

function onFrame(m) {
  switch (m.type) {
    case 'event': {
      const known = S.convs.has(m.conversation_id);
      const c = conv(m.conversation_id);
      c.log.offer(m);
      if (!known) loadDetails(c); // e.g. assigned directly (auto-accept)
      render();
      break;
    }
    case 'offer': addOffer(m); break;
    case 'offer_revoked': removeOffer(m.offer_id, m.reason); break;
    case 'transfer_failed': {
      const c = conv(m.conversation_id);
      c.banner = t('conv.transferFailed', { reason: code('why.', m.reason) });
      c.transferPending = null;
      render();
      break;
    }
    case 'typing': {
      if (!m.from || (m.from.role === 'agent' && m.from.id === S.me?.id)) return;
      const c = conv(m.conversation_id);
      c.typing = m.on ? { name: typingName(c, m.from), until: Date.now() + 8000 } : null;
      render();
      if (m.on) setTimeout(render, 8100);
      break;
    }
    case 'read': {
      if (m.from?.role !== 'customer') return;
      const c = conv(m.conversation_id);
      if (m.seq > c.readSeq) { c.readSeq = m.seq; render(); }
      break;
    }
    case 'status':
      applyStatus(S, m.status, m.reason, m.ends_in_ms);
      if (m.reason === 'missed_offers') toast(t('toast.missedOffers'));
      if (m.reason === 'wrap_up_ended') toast(t('toast.wrapUpOver'));
      render();
      break;
    case 'error':
      if (m.code === 'rate_limited') toast(t('toast.rateLimited'));
      else console.debug('switchboard error', m);
      break;
    default: break;
  }
}

// ------------------------------------------------------------------ conversations

function conv(id, extra) {
  let c = S.convs.get(id);
  if (!c) {
    c = {
      id, state: 'queued', events: [], customer: null, topic: null, details: null, tickets: null,
      member: false, monitoring: false, agents: new Map(), seen: 0, sentRead: 0, readSeq: 0,
      typing: null, banner: '', transferPending: null, synced: false, gone: false, rating: null,
    };
    c.log = new ConvLog(id, S.conn, (ev) => { apply(c, ev); render(); });
    S.convs.set(id, c);
    if (!S.active) S.active = id;
  }
  if (extra) Object.assign(c, extra);
  return c;
}

function apply(c, ev) {
  c.events.push(ev);
  const me = S.me?.id;
  switch (ev.kind) {
    case 'message':
      if (ev.from?.role === 'customer') {
        c.customer = { ...(c.customer || {}), id: ev.from.id, name: ev.from.name || c.customer?.name };
        c.typing = null;
        if (!isVisible(c)) notifyTitle();
      } else if (ev.from?.id === me) dropOutbox((it) => it.cmid === ev.client_msg_id || (it.kind === 'message' && it.conv === c.id && it.seq === ev.seq));
      break;
    case 'note':
      if (ev.from?.id === me) dropOutbox((it) => it.kind === 'note' && it.conv === c.id && it.seq === ev.seq);
      break;
    case 'joined':
      c.agents.set(ev.agent.id, ev.agent);
      if (c.state !== 'closed') c.state = 'assigned';
      if (ev.agent.id === me) { c.member = true; c.banner = ''; c.handedOver = false; }
      else if (c.transferPending) c.transferPending = null;
      break;
    case 'left':
      c.agents.delete(ev.agent.id);
      if (ev.agent.id === me) {
        c.member = false;
        c.transferPending = null;
        // After a hand-off the view follows it: read-only, with who has the chat now.
        c.handedOver = ev.reason === 'transferred';
        c.banner = c.handedOver ? '' : t('conv.youLeft', { reason: code('why.', ev.reason) });
      }
      break;
    case 'transfer': {
      const to = ev.to_agent ? t('target.agent', { agent: ev.to_agent }) : t('target.topic', { topic: ev.to_topic });
      if (ev.from_agent === me) c.transferPending = to;
      break;
    }
    case 'closed':
      c.state = 'closed';
      c.ticketId = ev.ticket_id;
      c.typing = null;
      c.banner = ev.ticket_id ? t('conv.closedTicket', { resolution: code('res.', ev.resolution), ticket: ev.ticket_id })
        : t('conv.closed', { resolution: code('res.', ev.resolution) });
      if (ev.ticket_id && c.tags == null) loadTags(c, ev.ticket_id);
      for (const it of S.outbox) if (it.conv === c.id && it.state !== 'stored') { it.state = 'failed'; it.error = 'closed'; }
      saveOutbox();
      break;
    case 'rating':
      c.rating = { score: ev.score, comment: ev.comment };
      break;
    default: break;
  }
  if (c.id === S.active) queueMicrotask(markRead);
}

function dropOutbox(pred) {
  const n = S.outbox.length;
  S.outbox = S.outbox.filter((it) => !pred(it));
  if (S.outbox.length !== n) saveOutbox();
}

function isVisible(c) { return S.view === 'inbox' && S.active === c.id && document.visibilityState === 'visible'; }

function unread(c) {
  let n = 0;
  for (const e of c.events) if (e.kind === 'message' && e.from?.role === 'customer' && e.seq > c.seen) n++;
  return n;
}

function markRead() {
  const c = S.convs.get(S.active);
  if (!c || !isVisible(c)) return;
  if (c.log.applied > c.seen) { c.seen = c.log.applied; render(); }
  if (c.member && c.state !== 'closed' && c.log.applied > c.sentRead && S.conn?.send({ type: 'read', conversation_id: c.id, seq: c.log.applied })) {
    c.sentRead = c.log.applied;
  }
  notifyTitle();
}

function notifyTitle() {
  let n = S.offers.size;
  for (const c of S.convs.values()) n += unread(c);
  document.title = (n ? `(${n}) ` : '') + t('app.title');
}

function api(path) {
  return rest(HUB, S.token, 'GET', path);
}

// The CSV form of a report (the export button).
async function apiCsv(path) {
  const res = await fetch(HUB + path, { headers: { Authorization: 'Bearer ' + S.token, Accept: 'text/csv' } });
  if (!res.ok) throw Object.assign(new Error(res.statusText), { status: res.status });
  return res.text();
}

async function loadDetails(c) {
  try {
    const body = await api('/v1/conversations/' + encodeURIComponent(c.id));
    const d = body.conversation || body;
    c.details = d;
    if (d.customer) c.customer = { ...(c.customer || {}), ...d.customer };
    if (d.topic) c.topic = d.topic;
    render();
    if (S.me?.supervisor && c.audit == null) loadAudit(api, c, render);
    if (c.history == null) loadHistory(api, c, render);
  } catch (err) {
    console.debug('details', c.id, err);
  }
}

// A closed chat's tags: the `closed` event names its ticket, the ticket has the tags.
// The ticket is written just after the event: a miss is retried a few times.
async function loadTags(c, ticketId, tries = 4) {
  c.tags = c.tags || [];
  try {
    const body = await api('/v1/tickets/' + encodeURIComponent(ticketId));
    c.tags = (body.ticket || body).tags || [];
    render();
  } catch (err) {
    if (tries > 1) setTimeout(() => loadTags(c, ticketId, tries - 1), 1000);
    else console.debug('tags', c.id, err);
  }
}

// ------------------------------------------------------------------ offers

function addOffer(o) {
  S.offers.set(o.offer_id, { offer: o, deadline: Date.now() + (o.expires_ms || 15000), expired: false });
  if (o.topic) S.topics.add(o.topic);
  renderOffers();
  notifyTitle();
  const cust = o.customer || {};
  offerAlert(o.offer_id, t(o.transfer ? 'offer.transferred' : 'offer.new'),
    `${who({ customer: cust })}${o.topic ? ' · ' + o.topic : ''}${o.preview ? ': ' + o.preview : ''}`);
}

function removeOffer(id, reason) {
  const o = S.offers.get(id);
  if (!o) return;
  S.offers.delete(id);
  if (reason === 'taken') toast(t('toast.offerTaken'));
  else if (reason === 'closed') toast(t('toast.offerClosed'));
  renderOffers();
  notifyTitle();
}

function accept(id) {
  const o = S.offers.get(id);
  if (!o || !S.conn) return;
  o.busy = true; renderOffers();
  S.conn.request({ type: 'accept', offer_id: id }).then((ack) => {
    S.offers.delete(id);
    const c = conv(ack.conversation_id || o.offer.conversation_id, { member: true, state: 'assigned' });
    c.customer = { ...(c.customer || {}), ...o.offer.customer };
    c.topic = o.offer.topic;
    if (o.offer.transfer) {
      const { from_agent: agent, note } = o.offer.transfer;
      c.banner = note ? t('conv.transferredFromNote', { agent, note }) : t('conv.transferredFrom', { agent });
    }
    select(c.id);
    resync(c);
    renderOffers(); notifyTitle();
  }, (err) => {
    o.busy = false;
    if (err.code === 'conflict' || err.code === 'not_found') { S.offers.delete(id); toast(t('toast.offerGone')); }
    else toast(t('toast.acceptFailed', { code: err.code }));
    renderOffers(); notifyTitle();
  });
}

function decline(id) {
  const o = S.offers.get(id);
  if (!o) return;
  S.offers.delete(id);
  renderOffers(); notifyTitle();
  S.conn?.request({ type: 'decline', offer_id: id }).catch(() => {});
}

function tickOffers() {
  const now = Date.now();
  let changed = false;
  for (const [id, o] of S.offers) {
    if (!o.expired && now >= o.deadline) { o.expired = true; changed = true; }
    if (now >= o.deadline + 3000) { S.offers.delete(id); changed = true; }
  }
  if (changed) { renderOffers(); notifyTitle(); }
  for (const li of $('offers').children) {
    const o = S.offers.get(li.dataset.offerId);
    if (!o) continue;
    const left = Math.max(0, o.deadline - now);
    li.querySelector('.bar > i').style.width = (100 * left / (o.offer.expires_ms || 15000)) + '%';
    li.querySelector('[data-testid="offer-countdown"]').textContent = t('unit.s', { n: Math.ceil(left / 1000) });
  }
}

function renderOffers() {
  const list = $('offers');
  const keep = new Set();
  for (const [id, o] of S.offers) {
    keep.add(id);
    let li = list.querySelector(`[data-offer-id="${CSS.escape(id)}"]`);
    if (!li) {
      const of = o.offer;
      const cust = of.customer || {};
      li = h('li', { class: 'offer', 'data-offer-id': id, 'data-conversation-id': of.conversation_id, 'data-testid': 'offer' },
        h('div', { class: 'who' },
          h('span', { text: who({ customer: cust }) }),
          h('span', { class: 'pill ' + (cust.verified ? 'verified' : 'unverified'), text: verifiedLabel(cust) }),
          h('span', { class: 'pill', text: of.topic })),
        of.transfer ? h('div', { class: 'small', 'data-testid': 'offer-transfer',
          text: of.transfer.note ? t('offer.transferFromNote', { agent: of.transfer.from_agent, note: of.transfer.note }) : t('offer.transferFrom', { agent: of.transfer.from_agent }) }) : null,
        h('div', { class: 'preview', dir: 'auto', text: of.preview || '' }),
        h('div', { class: 'small muted' }, tNodes('offer.waited', {
          time: t('unit.s', { n: Math.round((of.waited_ms || 0) / 1000) }), countdown: h('span', { 'data-testid': 'offer-countdown' }) })),
        h('div', { class: 'bar', 'aria-hidden': 'true' }, h('i')),
        h('div', { class: 'row' },
          h('button', { class: 'primary', type: 'button', 'data-testid': 'offer-accept', onclick: () => accept(id), text: t('offer.accept') }),
          h('button', { type: 'button', 'data-testid': 'offer-decline', onclick: () => decline(id), text: t('offer.decline') })));
      list.append(li);
    }
    li.classList.toggle('expired', o.expired);
    for (const b of li.querySelectorAll('button')) b.disabled = !!o.busy || o.expired;
  }
  for (const li of [...list.children]) if (!keep.has(li.dataset.offerId)) li.remove();
  $('offer-count').textContent = S.offers.size ? String(S.offers.size) : '';
  tickOffers();
}

// ------------------------------------------------------------------ sending

function flush() {
  if (!S.conn?.welcomed) return;
  for (const it of S.outbox) {
    if (it.state !== 'queued') continue;
    const c = S.convs.get(it.conv);
    if (!c || !c.synced) continue;
    if (c.state === 'closed') { it.state = 'failed'; it.error = 'closed'; continue; }
    it.state = 'sending';
    it.sent = true;
    const frame = it.kind === 'note'
      ? { type: 'note', conversation_id: it.conv, text: it.text }
      : { type: 'message', conversation_id: it.conv, text: it.text, client_msg_id: it.cmid, ...(it.attachment ? { attachment: it.attachment.id } : {}) };
    S.conn.request(frame).then((ack) => {
      it.state = 'stored'; it.seq = ack.seq;
      if (it.kind === 'message') c.log.acked(ack, { role: 'agent', id: S.me?.id, name: S.me?.name }, it);
      if (c.log.applied >= ack.seq) dropOutbox((x) => x === it);
      saveOutbox(); render();
    }, (err) => {
      if (err.code === 'disconnected') return;
      if (err.code === 'unavailable' || err.code === 'rate_limited' || err.code === 'timeout') {
        it.state = 'queued';
        setTimeout(flush, 1000 + Math.random() * 2000);
      } else { it.state = 'failed'; it.error = err.code; }
      saveOutbox(); render();
    });
  }
  saveOutbox();
  render();
}

// Notes carry no client_msg_id: one whose ack was lost is resent only when history does not
// already hold it.
function reconcileNotes(c) {
  const me = S.me?.id;
  dropOutbox((it) => it.kind === 'note' && it.conv === c.id && it.state === 'queued' && it.sent &&
    c.events.some((e) => e.kind === 'note' && e.from?.id === me && e.text === it.text && e.seq > (it.baseSeq || 0)));
}

function submit() {
  const input = $('input');
  const text = input.value.trim();
  const c = S.convs.get(S.active);
  if (!text || !c) return;
  const kind = S.noteMode || !c.member ? 'note' : 'message';
  S.outbox.push({ cmid: randomId('m-'), kind, text, conv: c.id, ts: Date.now(), state: 'queued', baseSeq: c.log.applied });
  input.value = '';
  closeCanned();
  typing(false);
  saveOutbox();
  flush();
  render(true);
}

function typing(on) {
  clearTimeout(S.typingTimer);
  const c = S.convs.get(S.active);
  const can = c && c.member && c.state !== 'closed' && !S.noteMode && S.conn?.welcomed;
  if (!on || !can) {
    if (S.typingOn && S.typingConv) S.conn?.send({ type: 'typing', conversation_id: S.typingConv, on: false });
    S.typingOn = false;
    return;
  }
  const now = Date.now();
  if (!S.typingOn || S.typingConv !== c.id || now - S.typingSentAt > 4000) {
    if (S.typingOn && S.typingConv !== c.id) S.conn.send({ type: 'typing', conversation_id: S.typingConv, on: false });
    S.typingOn = true; S.typingConv = c.id; S.typingSentAt = now;
    S.conn.send({ type: 'typing', conversation_id: c.id, on: true });
  }
  S.typingTimer = setTimeout(() => typing(false), 3000);
}

// ------------------------------------------------------------------ composer (canned responses: canned.js)

function setupComposer() {
  const input = $('input');
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); submit(); });
  $('note-toggle').addEventListener('click', () => { S.noteMode = !S.noteMode; typing(false); render(); input.focus(); });
  input.addEventListener('input', () => { updateCanned(); typing(!!input.value.trim()); });
  input.addEventListener('keydown', (e) => {
    if (cannedKeydown(e)) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  input.addEventListener('blur', () => setTimeout(closeCanned, 150));
  // Files: the paperclip, an image pasted into the reply, a file dropped on the log.
  $('attach').addEventListener('click', () => $('file').click());
  $('file').addEventListener('change', () => { const f = $('file').files?.[0]; $('file').value = ''; if (f) sendFile(f); });
  input.addEventListener('paste', (e) => {
    const f = [...(e.clipboardData?.files || [])][0];
    if (f) { e.preventDefault(); sendFile(f); }
  });
  $('log').addEventListener('dragover', (e) => { if (e.dataTransfer?.types?.includes('Files')) e.preventDefault(); });
  $('log').addEventListener('drop', (e) => {
    const f = e.dataTransfer?.files?.[0];
    if (f) { e.preventDefault(); sendFile(f); }
  });
}

// Uploads a file to the open conversation, then sends it as a message (through the
// outbox, like text: resent after a reconnect until acknowledged).
async function sendFile(file) {
  const c = S.convs.get(S.active);
  if (!c || !c.member || c.state === 'closed' || c.handedOver) return;
  toast(t('file.uploading', { name: file.name || 'file' }));
  try {
    const attachment = await uploadFile(c.id, file);
    S.outbox.push({ cmid: randomId('m-'), kind: 'message', text: '', attachment, conv: c.id, ts: Date.now(), state: 'queued', baseSeq: c.log.applied });
    saveOutbox();
    flush();
    render(true);
  } catch (err) {
    toast(t('file.failed', { message: err.message }));
  }
}

// ------------------------------------------------------------------ dialogs

function setupDialogs() {
  for (const d of document.querySelectorAll('dialog')) {
    d.querySelector('[data-close]').addEventListener('click', () => d.close());
  }
  $('btn-transfer').addEventListener('click', openTransfer);
  for (const r of $('form-transfer').kind) r.addEventListener('change', paintTransferTargets);
  $('form-transfer').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target;
    const c = S.convs.get(S.active);
    if (!c) return;
    const toTopic = f.kind.value === 'topic';
    const picked = !toTopic && !$('transfer-agent-row').hidden;
    const target = picked ? f.agent.value : f.target.value.trim();
    if (!target) { $('transfer-error').textContent = t(toTopic ? 'dlg.nameTopic' : 'dlg.pickAgent'); return; }
    const frame = { type: 'transfer', conversation_id: c.id };
    frame[toTopic ? 'to_topic' : 'to_agent'] = target;
    if (f.note.value.trim()) frame.note = f.note.value.trim();
    S.conn?.request(frame).then(() => {
      c.transferPending = toTopic ? t('target.topic', { topic: target }) : t('target.agent', { agent: picked ? agentName(c, target) : target });
      c.banner = '';
      $('dlg-transfer').close();
      render();
    }, (err) => { $('transfer-error').textContent = t('dlg.transferFailed', { code: err.code }) + (err.message ? ' — ' + err.message : ''); });
  });
  $('btn-details').addEventListener('click', () => {
    const on = !$('details').classList.contains('overlay');
    $('details').classList.toggle('overlay', on);
    $('btn-details').setAttribute('aria-expanded', String(on));
  });
  $('btn-close').addEventListener('click', () => {
    $('form-close').reset();
    $('close-error').textContent = '';
    $('dlg-close').showModal();
  });
  $('form-close').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target;
    const c = S.convs.get(S.active);
    if (!c) return;
    const tags = f.tags.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (!c.member) {
      const owners = [...c.agents.values()].map((a) => a.name || a.id).join(', ') || t('who.anotherAgent');
      if (!confirm(t('dlg.closeOthers', { owners }))) return;
    }
    S.conn?.request({ type: 'close', conversation_id: c.id, resolution: f.resolution.value, tags }).then((ack) => {
      c.ticketId = ack.ticket_id || c.ticketId;
      if (tags.length) c.tags = tags;
      $('dlg-close').close();
      render();
    }, (err) => { $('close-error').textContent = t('dlg.closeFailed', { code: err.code }) + (err.message ? ' — ' + err.message : ''); });
  });
}

// The transfer dialog's targets: supervisors pick from the agents (name, status, load, from
// GET /v1/agents); other agents type an id, helped by a list of the agents and topics known.
let transferAgents = null;
function openTransfer() {
  $('form-transfer').reset();
  $('transfer-error').textContent = '';
  transferAgents = null;
  paintTransferTargets();
  $('dlg-transfer').showModal();
  // Every agent gets the picker: the other agents (status, load) and every topic.
  api('/v1/transfer-targets').then((body) => {
    transferAgents = (body.agents || []).filter((a) => a.id !== S.me?.id);
    if (!S.me?.supervisor) S.agents = body.agents || []; // names for the log
    for (const topic of body.topics || []) S.topics.add(topic);
    paintTransferTargets();
  }, () => {});
}

const STATUS_ORDER = { available: 0, wrap_up: 1, away: 2, offline: 3 };
function paintTransferTargets() {
  const f = $('form-transfer');
  const toTopic = f.kind.value === 'topic';
  const pick = !toTopic && transferAgents && transferAgents.length > 0;
  $('transfer-agent-row').hidden = !pick;
  $('transfer-target-row').hidden = pick;
  $('transfer-target-label').textContent = t(toTopic ? 'dlg.topic' : 'dlg.agentId');
  if (pick) {
    const was = f.agent.value;
    const list = [...transferAgents].sort((a, b) => (STATUS_ORDER[a.status] ?? 9) - (STATUS_ORDER[b.status] ?? 9) || (a.name || a.id).localeCompare(b.name || b.id));
    f.agent.replaceChildren(...list.map((a) => h('option', { value: a.id,
      text: t('dlg.agentOption', { name: a.name || a.id, status: code('st.', a.status || 'offline'), load: a.load ?? 0, capacity: a.capacity ?? '?' }) })));
    if (was) f.agent.value = was;
  }
  for (const c of S.convs.values()) if (c.topic) S.topics.add(c.topic);
  const known = toTopic ? [...S.topics].map((t) => h('option', { value: t }))
    : (transferAgents || []).map((a) => h('option', { value: a.id, text: `${a.name || a.id} (${code('st.', a.status) || '?'})` }));
  $('transfer-targets').replaceChildren(...known);
}

// ------------------------------------------------------------------ supervisor

async function poll() {
  if (!S.me?.supervisor || S.view !== 'supervisor') return;
  try {
    const [stats, agents, queued, open, nodes] = await Promise.all([
      api('/v1/stats'), api('/v1/agents'), api('/v1/conversations?state=queued'), api('/v1/conversations'),
      api('/v1/nodes'),
    ]);
    $('sup-error').textContent = '';
    renderSupervisor(stats, agents.agents || [], queued.conversations || [], open.conversations || []);
    renderNodes(nodes);
  } catch (err) {
    $('sup-error').textContent = t('sup.loadFailed', { error: err.code || err.message });
  }
}


function topicRows(stats) {
  const list = stats.topics ?? stats.queues ?? [];
  return Array.isArray(list) ? list : Object.entries(list).map(([name, v]) => ({ name, ...v }));
}

function renderSupervisor(stats, agents, queued, open) {
  S.agents = agents;
  const rows = topicRows(stats);
  for (const r of rows) S.topics.add(r.topic ?? r.name);
  $('sup-queues').replaceChildren(...rows.map((r) => h('tr', { 'data-testid': 'sup-queue', 'data-topic': r.topic ?? r.name },
    h('td', { text: r.topic ?? r.name }),
    h('td', { 'data-testid': 'sup-waiting', text: String(r.waiting ?? r.queued ?? 0) }),
    h('td', { text: fmtMs(r.longest_wait_ms ?? r.longest_wait) }),
    h('td', { text: String(r.agents_available ?? r.available ?? '—') }))));
  const tot = stats.totals || {};
  $('sup-totals').textContent = Object.entries(tot).map(([k, v]) => `${k.replace(/_/g, ' ')}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
  $('sup-agents').replaceChildren(...agents.map((a) => h('tr', { 'data-testid': 'sup-agent', 'data-agent-id': a.id },
    h('td', {}, h('strong', { text: a.name || a.id }), ' ', h('span', { class: 'muted small', text: a.id }), a.supervisor ? h('span', { class: 'pill', text: t('sup.supervisor') }) : null),
    h('td', { class: 'st-' + a.status, 'data-testid': 'sup-agent-status', text: agentStatusText(a) }),
    h('td', { text: `${a.load ?? 0} / ${a.capacity ?? '—'}` }),
    h('td', { text: String(a.connections ?? '—') }))));
  const byId = new Map();
  for (const c of [...queued, ...open]) byId.set(c.conversation_id ?? c.id, c);
  const list = [...byId.values()].filter((c) => c.state !== 'closed');
  $('sup-convs').replaceChildren(...list.map((c) => {
    const id = c.conversation_id ?? c.id;
    const cust = c.customer || {};
    const agentsOf = (c.agents || (c.agent ? [c.agent] : [])).map((a) => (typeof a === 'object' ? a.name || a.id : a)).join(', ');
    const since = c.state === 'queued' ? c.waiting_since ?? c.created_at : null;
    const monitoring = S.convs.get(id)?.monitoring;
    return h('tr', { 'data-testid': 'sup-conv', 'data-conversation-id': id, 'data-state': c.state },
      h('td', { class: 'small', text: id }),
      h('td', { text: c.topic || '—' }),
      h('td', { text: code('state.', c.state) || '—' }),
      h('td', { text: who({ customer: cust }) }),
      h('td', { text: agentsOf || '—' }),
      h('td', { text: since ? fmtMs(Date.now() - since) : '—' }),
      slaCell(c),
      h('td', {}, h('button', { type: 'button', 'data-testid': 'sup-monitor', disabled: !!monitoring || S.convs.get(id)?.member, onclick: () => monitor(id), text: t(monitoring ? 'sup.monitoring' : 'sup.monitor') }),
        c.state === 'queued' ? assignCell(id, agents) : null));
  }));
}

// The hubs of the deployment: which one this console talks to, which one routes.
function renderNodes(body) {
  const here = body.node;
  $('sup-nodes').replaceChildren(...(body.nodes || []).map((n) => h('tr', { 'data-testid': 'sup-node', 'data-node-id': n.id },
    h('td', {}, h('strong', { text: n.id }), n.id === here ? h('span', { class: 'pill', text: t('sup.thisConsole') }) : null),
    h('td', { class: 'small', text: n.address || '—' }),
    h('td', { text: n.started_at ? timeSec(n.started_at) : '—' }),
    h('td', { text: String(n.connections?.customer ?? 0) }),
    h('td', { text: String(n.connections?.agent ?? 0) }),
    h('td', { 'data-testid': 'sup-node-routing', text: n.routing ? t('sup.routing', { epoch: String(n.epoch) }) : '' }))));
}

function monitor(id) {
  S.conn?.request({ type: 'monitor', conversation_id: id }).then(() => {
    S.monitored.add(id); saveMonitored();
    const c = conv(id, { monitoring: true });
    select(id);
    setView('inbox');
    resync(c);
  }, (err) => toast(t('toast.monitorFailed', { code: err.code })));
}

function closeTab(id) {
  const c = S.convs.get(id);
  if (!c) return;
  if (c.monitoring) { S.monitored.delete(id); saveMonitored(); S.conn?.request({ type: 'unmonitor', conversation_id: id }).catch(() => {}); }
  S.convs.delete(id);
  if (S.active === id) S.active = S.convs.keys().next().value ?? null;
  render();
}

// ------------------------------------------------------------------ rendering

function select(id) {
  if (S.active !== id) { typing(false); S.active = id; closeCanned(); }
  render(true);
  markRead();
}

let queued = false;
let scrollDown = false;
function render(scroll) {
  if (scroll) scrollDown = true;
  if (queued) return;
  queued = true;
  queueMicrotask(() => { queued = false; paint(); scrollDown = false; });
}

function paint() {
  if (!S.conn) return;
  $('me-name').textContent = S.me ? `${S.me.name} (${S.me.id})` : '';
  paintStatus(S);
  const conn = $('conn');
  conn.dataset.state = S.connState;
  conn.textContent = t(S.connState === 'open' ? 'conn.open' : S.connState === 'reconnecting' ? 'conn.reconnecting' : 'conn.connecting');
  paintTabs();
  paintConv();
  paintDetails();
  notifyTitle();
}

// A customer whose identity signature covered the user id only (the contract's form):
// the name and email beside it are as given, not verified.
function idOnly(cust) {
  return Array.isArray(cust.verified_fields) && !cust.verified_fields.includes('name');
}

function verifiedLabel(cust) {
  if (!cust.verified) return t('verified.no');
  return t(idOnly(cust) ? 'verified.idOnly' : 'verified.yes');
}

function who(c) {
  const cu = c.customer || {};
  return cu.name || cu.email || (cu.id ? t('who.visitorId', { id: cu.id.replace(/^v_/, '').slice(0, 6) }) : t('who.visitor'));
}

// Who is typing, by name: the frame's name, the customer's name from the conversation, or
// "Visitor 1a2b3c" — never a raw visitor id.
function typingName(c, from) {
  if (from.name) return from.name;
  if (from.role === 'customer') return who({ customer: { ...(c.customer || {}), id: c.customer?.id || from.id } });
  return agentName(c, from.id);
}

// An agent's display name: from the conversation's joined events, else the id.
function agentName(c, id) {
  if (!id) return t('who.anotherAgent');
  if (id === S.me?.id) return S.me.name || id;
  const a = c?.agents.get(id) || c?.events.find((e) => (e.kind === 'joined' || e.kind === 'left') && e.agent?.id === id)?.agent;
  return a?.name || S.agents.find?.((x) => x.id === id)?.name || id;
}

// Whom the last transfer went to: the agent's name (from their `joined`), or the queue.
function handedTo(c) {
  const tr = [...c.events].reverse().find((e) => e.kind === 'transfer');
  if (!tr) return t('who.anotherAgent');
  if (tr.to_topic) return t('conv.topicQueue', { topic: tr.to_topic });
  const name = agentName(c, tr.to_agent);
  return name === tr.to_agent && !c.events.some((e) => e.kind === 'joined' && e.agent?.id === tr.to_agent) ? t('who.anotherAgent') : name;
}

function paintTabs() {
  const list = $('tabs');
  const items = [...S.convs.values()];
  const keep = new Set();
  let prev = null;
  for (const c of items) {
    keep.add(c.id);
    let li = list.querySelector(`[data-conversation-id="${CSS.escape(c.id)}"]`);
    if (!li) {
      li = h('li', { class: 'tab', role: 'tab', tabindex: '0', 'data-conversation-id': c.id, 'data-testid': 'tab',
        onclick: () => select(c.id), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(c.id); } } },
        h('span', { class: 'name', dir: 'auto' }), h('span', { class: 'right' }, h('span', { class: 'unread', 'data-testid': 'tab-unread' }), h('span', { class: 'pill st' }),
          h('button', { class: 'x', type: 'button', 'aria-label': t('tab.close'), 'data-testid': 'tab-close', onclick: (e) => { e.stopPropagation(); closeTab(c.id); } }, '×')),
        h('span', { class: 'last', dir: 'auto' }));
    }
    li.querySelector('.name').textContent = who(c);
    const u = unread(c);
    li.querySelector('.unread').textContent = u ? String(u) : '';
    const st = li.querySelector('.st');
    st.textContent = c.monitoring && !c.member ? t('tab.monitor') : code('state.', c.state);
    st.className = 'pill st' + (c.monitoring && !c.member ? ' monitor' : '');
    li.querySelector('.x').hidden = !(c.state === 'closed' || !c.member || c.gone);
    const last = [...c.events].reverse().find((e) => e.kind === 'message' || e.kind === 'note');
    li.querySelector('.last').textContent = last ? last.text : '';
    li.setAttribute('aria-selected', String(c.id === S.active));
    li.dataset.state = c.state;
    const next = prev ? prev.nextSibling : list.firstChild;
    if (next !== li) list.insertBefore(li, next);
    prev = li;
  }
  for (const li of [...list.children]) if (!keep.has(li.dataset.conversationId)) li.remove();
}

const logNodes = new Map();
let logConv = null;

const clock = time;

function describe(ev, c) {
  switch (ev.kind) {
    case 'joined': return t('sys.joined', { name: ev.agent.name || ev.agent.id });
    case 'left': return t('sys.left', { name: ev.agent.name || ev.agent.id, reason: code('why.', ev.reason) });
    case 'transfer': return ev.to_agent ? t('sys.transferAgent', { from: agentName(c, ev.from_agent), to: agentName(c, ev.to_agent) })
      : t('sys.transferTopic', { from: agentName(c, ev.from_agent), topic: ev.to_topic });
    case 'closed': {
      const by = ev.by?.role === 'customer' ? t('sys.byCustomer') : ev.by?.id || t('sys.bySystem');
      const resolution = code('res.', ev.resolution);
      return ev.ticket_id ? t('sys.closedTicket', { by, resolution, ticket: ev.ticket_id }) : t('sys.closed', { by, resolution });
    }
    case 'rating': return ev.comment ? t('sys.ratedComment', { score: ev.score, comment: ev.comment }) : t('sys.rated', { score: ev.score });
    default: return ev.kind;
  }
}

function msgEl(kind, role, text, conv, attachment) {
  const cls = kind === 'note' ? 'msg note' : 'msg ' + (role === 'customer' ? 'customer' : role === 'agent' ? 'agent' : 'system');
  const bubble = attachment
    ? h('div', { class: 'bubble', dir: 'auto' }, attachmentEl(conv, attachment), text ? h('div', { text }) : null)
    : h('div', { class: 'bubble', dir: 'auto', text });
  return h('div', { class: cls, 'data-testid': kind === 'note' ? 'note' : 'msg', 'data-kind': kind, 'data-role': role },
    kind === 'note' ? h('span', { class: 'label', text: t('msg.note') }) : null,
    bubble,
    h('div', { class: 'meta' }));
}

function setMeta(n, text, state) {
  const m = n.querySelector('.meta');
  if (m.textContent !== text) m.textContent = text;
  if (state && n.dataset.state !== state) n.dataset.state = state;
}

function paintConv() {
  const c = S.convs.get(S.active);
  $('conv-empty').hidden = !!c;
  $('conv-hint').textContent = t(S.status === 'available' ? 'conv.hintAvailable' : 'conv.hintAway');
  $('conv-main').hidden = !c;
  const log = $('log');
  if (logConv !== (c?.id ?? null)) { log.replaceChildren(); logNodes.clear(); logConv = c?.id ?? null; }
  if (!c) return;
  const cu = c.customer || {};
  const title = $('conv-title');
  title.replaceChildren(...[h('span', { dir: 'auto', text: who(c) }),
    h('span', { class: 'pill ' + (cu.verified ? 'verified' : 'unverified'), 'data-testid': 'conv-verified', text: verifiedLabel(cu) }),
    c.monitoring && !c.member ? h('span', { class: 'pill monitor', text: t('conv.monitoring') }) : null].filter(Boolean));
  const agents = [...c.agents.values()].map((a) => a.name || a.id).join(', ');
  $('conv-sub').textContent = [c.topic && t('conv.topic', { topic: c.topic }), code('state.', c.state), agents && t('conv.with', { agents }), c.id].filter(Boolean).join(' · ');
  const open = c.state !== 'closed';
  const canAct = open && !c.handedOver && (c.member || S.me?.supervisor);
  $('btn-transfer').disabled = !canAct;
  $('btn-close').disabled = !canAct;
  const tagged = c.state === 'closed' && c.tags?.length ? ' ' + t('conv.tags', { tags: c.tags.join(', ') }) : '';
  const banner = c.handedOver ? t('conv.handedOver', { target: handedTo(c) })
    : c.transferPending && open ? t('conv.transferRequested', { target: c.transferPending }) : c.banner;
  $('conv-main').classList.toggle('handed-over', !!c.handedOver);
  $('conv-banner').hidden = !banner;
  $('conv-banner').textContent = (banner || '') + (c.handedOver ? '' : tagged);
  $('conv-banner').hidden = !(banner || tagged);

  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  const want = [];
  for (const ev of c.events) want.push(['e' + ev.seq, ev]);
  for (const it of S.outbox) if (it.conv === c.id) want.push(['p' + it.cmid, it]);
  const keep = new Set();
  let prev = null;
  const me = S.me?.id;
  for (const [key, x] of want) {
    let n = logNodes.get(key);
    if (!n) {
      if (key[0] === 'p') n = msgEl(x.kind, 'agent', x.text, x.conv, x.attachment);
      else if (x.kind === 'message' || x.kind === 'note') n = msgEl(x.kind, x.from?.role || 'system', x.text, c.id, x.attachment);
      else n = h('div', { class: 'sys', 'data-testid': 'sys', 'data-kind': x.kind }, h('span', { text: describe(x, c) }),
        x.kind === 'transfer' && x.note ? h('span', { class: 'n', text: t('sys.note', { note: x.note }) }) : null);
      logNodes.set(key, n);
    }
    if (key[0] === 'e' && n.dataset.testid === 'sys') {
      const text = describe(x, c); // names can arrive later (a transfer's `joined`)
      if (n.firstChild.textContent !== text) n.firstChild.textContent = text;
    } else if (key[0] === 'p') {
      n.dataset.cmid = x.cmid;
      const st = x.state === 'stored' ? 'stored' : x.state === 'failed' ? 'failed' : 'sending';
      const said = st === 'failed' ? t('msg.notSent', { error: x.error === 'closed' ? t('msg.closed') : x.error }) : t(st === 'stored' ? 'msg.sent' : 'msg.sending');
      setMeta(n, `${clock(x.ts)} · ${said}`, st);
    } else if (x.kind === 'message' || x.kind === 'note') {
      n.dataset.seq = x.seq;
      if (x.client_msg_id) n.dataset.cmid = x.client_msg_id;
      const name = x.from?.name || x.from?.id || '';
      if (x.kind === 'message' && x.from?.role === 'agent') {
        const st = x.seq <= c.readSeq ? 'read' : 'stored';
        setMeta(n, `${x.from.id === me ? t('who.you') : name} · ${clock(x.ts)} · ${t(st === 'read' ? 'msg.seen' : 'msg.sent')}`, st);
      } else setMeta(n, `${x.from?.id === me ? t('who.you') : x.from?.role === 'customer' ? (x.from.name || who(c)) : name} · ${clock(x.ts)}`);
    }
    keep.add(key);
    const next = prev ? prev.nextSibling : log.firstChild;
    if (next !== n) log.insertBefore(n, next);
    prev = n;
  }
  for (const [k, n] of logNodes) if (!keep.has(k)) { n.remove(); logNodes.delete(k); }
  if (atBottom || scrollDown) log.scrollTop = log.scrollHeight;

  const ty = c.typing && c.typing.until > Date.now() ? c.typing : null;
  $('typing').textContent = ty ? t('typing', { name: ty.name }) : '';
  $('typing').dataset.on = String(!!ty);

  const noteOnly = !c.member;
  const note = S.noteMode || noteOnly;
  $('composer').classList.toggle('note-mode', note);
  $('note-toggle').setAttribute('aria-pressed', String(note));
  $('note-toggle').disabled = noteOnly;
  $('input').placeholder = t(note ? 'composer.noteInput' : 'composer.replyHint');
  $('input').setAttribute('aria-label', t(note ? 'composer.noteLabel' : 'composer.reply'));
  $('send').textContent = t(note ? 'composer.addNote' : 'composer.send');
  const canWrite = open && !c.handedOver && (c.member || S.me?.supervisor);
  $('input').disabled = !canWrite;
  $('send').disabled = !canWrite;
  $('attach').disabled = !canWrite || note;
}

function paintDetails() {
  const box = $('details');
  const c = S.convs.get(S.active);
  if (!c) { box.replaceChildren(); return; }
  const cu = c.customer || {};
  const d = c.details || {};
  // [field, value]: the field names the row (its test id) and its label (details.<field>).
  const rows = [
    ['name', cu.name || '—'], ['email', cu.email || '—'],
    ['verified', t(!cu.verified ? 'details.no' : idOnly(cu) ? 'details.idOnly' : 'details.yes')], ['visitor', cu.id || '—'],
    ['topic', c.topic || d.topic || '—'],
  ];
  if (d.created_at) rows.push(['opened', dateTime(d.created_at)]);
  if (c.tags?.length) rows.push(['tags', c.tags.join(', ')]);
  if (c.rating) rows.push(['rating', `${c.rating.score}/${d.survey === 'nps' ? 10 : 5}${c.rating.comment ? ' — ' + c.rating.comment : ''}`]);
  const allMeta = d.metadata && typeof d.metadata === 'object' ? d.metadata : {};
  rows.push(['page', allMeta.page || '—'], ['referrer', allMeta.referrer || '—']);
  const meta = Object.entries(allMeta).filter(([k]) => k !== 'page' && k !== 'referrer');
  const sig = JSON.stringify([rows, meta, historySig(c), S.me?.supervisor ? c.audit ?? null : 0]);
  if (box.dataset.sig === sig && box.dataset.conv === c.id) return;
  box.dataset.sig = sig; box.dataset.conv = c.id;
  box.replaceChildren(...[
    h('h3', { text: t('details.customer') }),
    h('dl', {}, rows.flatMap(([k, v]) => [h('dt', { text: t('details.' + k) }), h('dd', { 'data-testid': 'detail-' + k, dir: 'auto', text: String(v) })])),
    meta.length ? h('h3', { text: t('details.metadata') }) : null,
    meta.length ? h('dl', {}, meta.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { dir: 'auto', text: (typeof v === 'string' ? v : JSON.stringify(v)) || '—' })])) : null,
    ...historySection(api, c, render),
    ...(S.me?.supervisor ? auditSection(c, () => loadAudit(api, c, render)) : []),
  ].filter(Boolean));
}

let toastTimer = 0;
function toast(text) {
  const box = $('toast');
  box.textContent = text;
  box.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove('show'), 3500);
}

// A tiny hook for the browser tests.
window.SwitchboardConsole = {
  state: () => ({
    connection: S.connState, status: S.status, me: S.me, active: S.active, offers: [...S.offers.keys()],
    conversations: [...S.convs.values()].map((c) => ({ id: c.id, state: c.state, lastSeq: c.log.applied, member: c.member, monitoring: c.monitoring, unread: unread(c) })),
    pending: S.outbox.filter((it) => it.state === 'queued' || it.state === 'sending').length,
    hub: HUB, refusedHub: REFUSED_HUB,
  }),
};

boot();
