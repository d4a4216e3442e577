// The offline messages view (docs/protocol.md, "The inbox of offline messages"): what
// customers left through the widget's offline form while nobody could chat, newest first,
// each with a reply-by-email link and "Mark handled". The count of open ones shows on the
// view's button, refreshed every half minute and after each change.

import { $, h } from './dom.js';
import { dateTime, t } from './i18n.js';
import { rest } from './rest.js';

const COUNT_MS = 30_000;

let hub = '';
let token = () => '';
let toast = () => {};
let state = 'open';
let timer = 0;

export function initMessages(opts) {
  hub = opts.hub;
  token = opts.token;
  toast = opts.toast;
  $('messages-open').addEventListener('click', () => { state = 'open'; loadMessages(); });
  $('messages-done').addEventListener('click', () => { state = 'done'; loadMessages(); });
}

function call(method, path, json) {
  return rest(hub, token(), method, path, { json });
}

function showCount(open) {
  const n = Number(open) || 0;
  $('messages-count').textContent = n ? String(n) : '';
  $('view-messages').setAttribute('aria-label', t('msgs.tabLabel', { n }));
}

/** Keeps the open count on the view's button fresh (call once signed in). */
export function watchMessageCount() {
  clearInterval(timer);
  const tick = () => call('GET', '/v1/inbox?limit=1').then((b) => showCount(b.open), () => {});
  tick();
  timer = setInterval(tick, COUNT_MS);
}

export async function loadMessages() {
  $('messages-open').setAttribute('aria-pressed', String(state === 'open'));
  $('messages-done').setAttribute('aria-pressed', String(state === 'done'));
  const list = $('messages-list');
  try {
    const body = await call('GET', `/v1/inbox?state=${state}&limit=100`);
    showCount(body.open);
    list.replaceChildren(...body.messages.map(item));
    $('messages-empty').hidden = body.messages.length > 0;
    $('messages-empty').textContent = t(state === 'open' ? 'msgs.emptyOpen' : 'msgs.emptyDone');
  } catch (err) {
    toast(t('msgs.loadFailed', { message: err.message }));
  }
}

function item(m) {
  const customer = m.customer || {};
  const who = customer.name || customer.email || customer.id || '';
  const subject = t('msgs.replySubject');
  const mail = customer.email
    ? h('a', { class: 'button', href: `mailto:${encodeURIComponent(customer.email)}?subject=${encodeURIComponent(subject)}`, 'data-testid': 'message-reply', text: t('msgs.reply') })
    : null;
  const toggle = h('button', {
    type: 'button',
    class: m.handled_by ? 'ghost' : 'primary',
    'data-testid': m.handled_by ? 'message-reopen' : 'message-handled',
    text: t(m.handled_by ? 'msgs.reopen' : 'msgs.markHandled'),
    onclick: async () => {
      toggle.disabled = true;
      try {
        await call('PATCH', '/v1/inbox/' + encodeURIComponent(m.ticket_id), { handled: !m.handled_by });
        await loadMessages();
      } catch (err) {
        toggle.disabled = false;
        toast(t('msgs.markFailed', { message: err.message }));
      }
    },
  });
  return h('li', { class: 'message-item', 'data-testid': 'message', 'data-ticket': m.ticket_id },
    h('div', { class: 'message-head' },
      h('strong', { dir: 'auto', text: who }),
      customer.email && customer.name ? h('span', { class: 'muted small', dir: 'ltr', text: customer.email }) : null,
      h('span', { class: 'pill', text: m.topic }),
      h('span', { class: 'muted small', text: dateTime(m.left_at) })),
    h('p', { class: 'message-text', dir: 'auto', 'data-testid': 'message-text', text: m.text || '' }),
    m.handled_by ? h('p', { class: 'muted small', 'data-testid': 'message-handled-by', text: t('msgs.handledBy', { name: m.handled_by, when: dateTime(m.handled_at) }) }) : null,
    h('div', { class: 'message-actions' }, mail, toggle,
      h('span', { class: 'muted small', text: t('msgs.ticket', { id: m.ticket_id }) })));
}
