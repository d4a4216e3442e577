// The queue in the console: every agent sees the chats waiting and may take one
// (`take`); a supervisor may give a waiting chat to an agent (`assign`).

import { $, h, fmtMs } from './dom.js';
import { code, t } from './i18n.js';

const POLL_MS = 4000;
let Q = null; // { api, request, toast, items, timer }

/** Starts polling `GET /v1/queue`; `request(frame)` sends a WebSocket request. */
export function initQueue(api, request, toast) {
  Q = { api, request, toast, items: [] };
  refreshQueue();
  Q.timer = setInterval(refreshQueue, POLL_MS);
}

export async function refreshQueue() {
  if (!Q) return;
  try {
    const body = await Q.api('/v1/queue');
    Q.items = body.queue || [];
  } catch {
    return; // signed out or offline: the next poll tries again
  }
  paintQueue();
}

function paintQueue() {
  $('queue-count').textContent = Q.items.length ? t('queue.count', { n: Q.items.length }) : '';
  $('queue').replaceChildren(...Q.items.map((c) => h('li', { class: 'queue-item', 'data-testid': 'queue-item', 'data-conversation-id': c.conversation_id },
    h('div', {}, h('strong', { dir: 'auto', text: c.customer?.name || t('who.visitorId', { id: String(c.customer?.id || '').slice(2, 8) }) }), ' ',
      h('span', { class: 'muted small', text: t('queue.waiting', { topic: c.topic, time: fmtMs(Date.now() - c.waiting_since) }) })),
    h('div', { class: 'muted small', dir: 'auto', text: c.preview || '' }),
    h('button', { type: 'button', 'data-testid': 'queue-take', onclick: () => take(c.conversation_id), text: t('queue.take') }))));
}

function take(id) {
  Q.request({ type: 'take', conversation_id: id }).then(
    () => refreshQueue(),
    (err) => Q.toast(err.code === 'conflict' ? t('toast.takeConflict') : t('toast.takeFailed', { code: err.code })));
}

/** A supervisor's "Assign to…" picker for a queued conversation row. */
export function assignCell(conversationId, agents) {
  const pick = h('select', { 'aria-label': t('sup.assign'), 'data-testid': 'sup-assign' },
    h('option', { value: '', text: t('sup.assignPick') }),
    agents.filter((a) => a.status !== 'offline').map((a) => h('option', { value: a.id, text: `${a.name || a.id} (${code('st.', a.status)}, ${a.load ?? 0}/${a.capacity ?? '—'})` })));
  pick.addEventListener('change', () => {
    if (!pick.value) return;
    Q?.request({ type: 'assign', conversation_id: conversationId, agent: pick.value }).then(
      () => { Q.toast(t('toast.assigned', { agent: pick.value })); refreshQueue(); },
      (err) => { pick.value = ''; Q.toast(t('toast.assignFailed', { code: err.code })); });
  });
  return pick;
}
