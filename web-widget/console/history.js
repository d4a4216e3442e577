// The customer's past conversations in the details panel (issue 18), for every agent:
// newest first, a page at a time ("More"), each opening its transcript in place
// (GET /v1/tickets/{id}). Looked up by visitor id: a verified customer's visitor id is
// derived from its customer id, so the same query serves both.

import { h } from './dom.js';
import { code, dateTimeShort, t, time } from './i18n.js';

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
    const ticket = await api('/v1/tickets/' + encodeURIComponent(id));
    open[id] = { events: ticket.transcript || [] };
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
  const at = time(e.ts);
  const who = (p) => p?.name || (p?.role === 'customer' ? t('hist.customer') : p?.id || p?.role || '');
  let text;
  switch (e.kind) {
    case 'message': text = t('hist.message', { who: who(e.from), text: e.text }); break;
    case 'note': text = t('hist.note', { who: who(e.from), text: e.text }); break;
    case 'joined': text = t('hist.joined', { who: who(e.agent) }); break;
    case 'left': text = t('hist.left', { who: who(e.agent) }); break;
    case 'closed': text = e.resolution ? t('hist.closedAs', { resolution: code('res.', e.resolution) }) : t('hist.closed'); break;
    case 'rating': text = e.comment ? t('hist.ratedComment', { score: e.score, comment: e.comment }) : t('hist.rated', { score: e.score }); break;
    default: text = e.kind;
  }
  return h('li', { class: 'past-' + e.kind }, h('span', { class: 'muted small', text: at + ' ' }), text);
}

function itemEl(api, c, render, ticket) {
  const o = c.history.open[ticket.ticket_id];
  const date = dateTimeShort(ticket.closed_at);
  const label = [date, ticket.topic, code('res.', ticket.resolution), ticket.agents.join(', ')].filter(Boolean).join(' · ');
  return h('li', { 'data-testid': 'past-conversation', 'data-ticket': ticket.ticket_id },
    h('button', {
      type: 'button', class: 'link', 'aria-expanded': o ? 'true' : 'false',
      onclick: () => toggle(api, c, render, ticket.ticket_id), text: label,
    }),
    ticket.preview ? h('div', { class: 'muted small', dir: 'auto', text: ticket.preview }) : null,
    !o ? null
      : o.loading ? h('p', { class: 'muted small', text: t('hist.transcriptLoading') })
      : o.error ? h('p', { class: 'error', text: t('hist.transcriptFailed', { error: o.error }) })
      : h('ol', { class: 'past-transcript', 'data-testid': 'past-transcript' }, o.events.map(eventLine)));
}

// The "Past conversations" section of conversation c (its own ticket left out).
export function historySection(api, c, render) {
  const hist = c.history;
  const items = (hist?.items || []).filter((it) => !it.conversation_id || it.conversation_id !== c.id);
  return [
    h('h3', { text: t('hist.title') }),
    !hist || (hist.loading && !hist.loaded) ? h('p', { class: 'muted small', text: t('hist.loading') })
      : hist.error ? h('p', { class: 'error', text: t('hist.failed', { error: hist.error }) })
      : !items.length && !hist.next ? h('p', { class: 'muted small', 'data-testid': 'no-past-conversations', text: t('hist.none') })
      : h('ul', { class: 'history', 'data-testid': 'past-conversations' }, items.map((it) => itemEl(api, c, render, it))),
    hist?.next ? h('button', {
      type: 'button', class: 'ghost small', 'data-testid': 'history-more', disabled: hist.loading,
      onclick: () => loadHistory(api, c, render, true), text: t(hist.loading ? 'hist.loading' : 'hist.more'),
    }) : null,
  ];
}
