// The customer's past conversations in the details panel (issue 18), for every agent:
// newest first, a page at a time ("More"), each opening its transcript in place
// (GET /v1/tickets/{id}). Looked up by visitor id: a verified customer's visitor id is
// derived from its customer id, so the same query serves both.

import { h } from './dom.js';

const PAGE = 5;

// The parts of a ticket the list shows (the list reply carries whole transcripts).
function summary(t) {
  const first = (t.transcript || []).find((e) => e.kind === 'message');
  return {
    ticket_id: t.ticket_id, conversation_id: t.conversation_id, topic: t.topic, resolution: t.resolution,
    closed_at: t.closed_at, agents: (t.agents || []).map((a) => a.name || a.id), rating: t.rating,
    preview: first?.text ? first.text.slice(0, 80) : '',
  };
}

// Loads the first page of c's customer's tickets, or the next one with `more`.
export async function loadHistory(api, c, render, more = false) {
  const visitor = c.customer?.id;
  if (!visitor) return;
  if (!c.history || c.history.visitor !== visitor) c.history = { visitor, items: [], next: null, open: {}, loading: false, loaded: false };
  const hist = c.history;
  if (hist.loading || (more && !hist.next)) return;
  hist.loading = true;
  render();
  try {
    let path = `/v1/tickets?order=newest&limit=${PAGE}&visitor=${encodeURIComponent(visitor)}`;
    if (more) path += '&after=' + encodeURIComponent(hist.next);
    const body = await api(path);
    const seen = new Set(hist.items.map((t) => t.ticket_id));
    hist.items.push(...(body.tickets || []).filter((t) => !seen.has(t.ticket_id)).map(summary));
    hist.next = body.next || null;
    hist.error = null;
    hist.loaded = true;
  } catch (err) {
    hist.error = err.code || err.message || 'error';
  }
  hist.loading = false;
  render();
}

// Opens (loading it once) or closes one past conversation's transcript.
async function toggle(api, c, render, id) {
  const open = c.history.open;
  if (open[id]) { delete open[id]; render(); return; }
  open[id] = { loading: true };
  render();
  try {
    const t = await api('/v1/tickets/' + encodeURIComponent(id));
    open[id] = { events: t.transcript || [] };
  } catch (err) {
    open[id] = { error: err.code || err.message || 'error' };
  }
  render();
}

// What changes the section (the panel repaints only when its signature changes).
export function historySig(c) {
  const hist = c.history;
  if (!hist) return null;
  const open = Object.entries(hist.open).map(([id, o]) => [id, o.loading ? 1 : o.error || o.events?.length]);
  return [hist.items.map((t) => t.ticket_id), hist.next, hist.loading, hist.error, open];
}

function eventLine(e) {
  const time = e.ts ? new Date(e.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
  const who = (p) => p?.name || (p?.role === 'customer' ? 'Customer' : p?.id || p?.role || '');
  let text;
  switch (e.kind) {
    case 'message': text = `${who(e.from)}: ${e.text}`; break;
    case 'note': text = `Note (${who(e.from)}): ${e.text}`; break;
    case 'joined': text = `${who(e.agent)} joined`; break;
    case 'left': text = `${who(e.agent)} left`; break;
    case 'closed': text = `Closed${e.resolution ? ' — ' + e.resolution : ''}`; break;
    case 'rating': text = `Rated ${e.score}${e.comment ? ' — ' + e.comment : ''}`; break;
    default: text = e.kind;
  }
  return h('li', { class: 'past-' + e.kind }, h('span', { class: 'muted small', text: time + ' ' }), text);
}

function itemEl(api, c, render, t) {
  const o = c.history.open[t.ticket_id];
  const date = t.closed_at ? new Date(t.closed_at).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '';
  const label = [date, t.topic, t.resolution, t.agents.join(', ')].filter(Boolean).join(' · ');
  return h('li', { 'data-testid': 'past-conversation', 'data-ticket': t.ticket_id },
    h('button', {
      type: 'button', class: 'link', 'aria-expanded': o ? 'true' : 'false',
      onclick: () => toggle(api, c, render, t.ticket_id), text: label,
    }),
    t.preview ? h('div', { class: 'muted small', text: t.preview }) : null,
    !o ? null
      : o.loading ? h('p', { class: 'muted small', text: 'Loading transcript…' })
      : o.error ? h('p', { class: 'error', text: 'Could not load the transcript: ' + o.error })
      : h('ol', { class: 'past-transcript', 'data-testid': 'past-transcript' }, o.events.map(eventLine)));
}

// The "Past conversations" section of conversation c (its own ticket left out).
export function historySection(api, c, render) {
  const hist = c.history;
  const items = (hist?.items || []).filter((t) => !t.conversation_id || t.conversation_id !== c.id);
  return [
    h('h3', { text: 'Past conversations' }),
    !hist || (hist.loading && !hist.loaded) ? h('p', { class: 'muted small', text: 'Loading…' })
      : hist.error ? h('p', { class: 'error', text: 'Could not load past conversations: ' + hist.error })
      : !items.length && !hist.next ? h('p', { class: 'muted small', 'data-testid': 'no-past-conversations', text: 'No earlier conversations.' })
      : h('ul', { class: 'history', 'data-testid': 'past-conversations' }, items.map((t) => itemEl(api, c, render, t))),
    hist?.next ? h('button', {
      type: 'button', class: 'ghost small', 'data-testid': 'history-more', disabled: hist.loading,
      onclick: () => loadHistory(api, c, render, true), text: hist.loading ? 'Loading…' : 'More',
    }) : null,
  ];
}
