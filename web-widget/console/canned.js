// Canned responses in the composer (issue 18). Typing `/` (then a word) searches the
// hub's responses for the active conversation's topic plus the global ones, by shortcut
// and text (substring, case-insensitive). The list is fetched anew each time it opens
// (GET /v1/canned?topic=), so a response added over REST shows without a reload; until
// the answer comes the last list is shown. Picking one puts its text in the composer with
// the placeholders expanded (docs/protocol.md, "Canned responses (issue 18)").
// Text from the hub is only ever set with textContent.

import { $, h } from './dom.js';
import { t } from './i18n.js';

const C = {
  api: null,        // (path) => Promise<json>
  context: null,    // () => ({ conv, me }): the active conversation and the agent
  onPick: null,     // called after a pick (the console sends typing)
  byTopic: new Map(), // topic ('' for none) -> responses last fetched
  open: false, items: [], index: 0,
  wanted: false,    // the composer holds a `/…` query
  fetching: 0,      // generation of the latest fetch
};

export function initCanned({ api, context, onPick }) {
  Object.assign(C, { api, context, onPick });
}

// `{customer.name}` → the customer's name, or "there" when unknown ("Hi there");
// `{customer.email}`, `{agent.name}`, `{topic}` → the value or ''. Others stay as typed.
export function expandPlaceholders(text, { conv, me } = {}) {
  const cu = conv?.customer || {};
  const values = {
    'customer.name': cu.name || 'there',
    'customer.email': cu.email || '',
    'agent.name': me?.name || me?.id || '',
    topic: conv?.topic || '',
  };
  return String(text).replace(/\{(customer\.name|customer\.email|agent\.name|topic)\}/g, (_, k) => values[k]);
}

function topicOf() { return C.context()?.conv?.topic || ''; }

// Fetches the responses for the active topic (the global ones only while the topic is not
// known yet), then shows the list again if the query is still there.
async function refresh() {
  const topic = topicOf();
  const gen = ++C.fetching;
  try {
    const path = topic ? '/v1/canned?topic=' + encodeURIComponent(topic) : '/v1/canned';
    const body = await C.api(path);
    const list = (body.canned_responses || [])
      .filter((r) => r && r.shortcut && r.text && (!r.topic || r.topic === topic));
    C.byTopic.set(topic, list);
  } catch (err) {
    console.debug('canned responses', err);
    return;
  }
  if (gen === C.fetching && C.wanted) updateCanned();
}

function search(q) {
  const list = C.byTopic.get(topicOf()) || [];
  const hits = list.filter((r) => r.shortcut.includes(q) || r.text.toLowerCase().includes(q));
  // Shortcuts that start with the query first, then the rest, each in the hub's order.
  return [...hits.filter((r) => r.shortcut.startsWith(q)), ...hits.filter((r) => !r.shortcut.startsWith(q))];
}

// Called on every input: opens, filters or closes the list.
export function updateCanned() {
  const m = /^\/(\S*)$/.exec($('input').value);
  if (!m) { closeCanned(); return; }
  if (!C.wanted) { C.wanted = true; refresh(); }
  const items = search(m[1].toLowerCase());
  if (!items.length) { hide(); return; }
  Object.assign(C, { open: true, items, index: 0 });
  renderCanned();
}

function renderCanned() {
  const box = $('canned');
  box.hidden = !C.open;
  box.replaceChildren(...C.items.map((r, i) => h('div', {
    role: 'option', 'aria-selected': String(i === C.index), 'data-testid': 'canned-item', 'data-key': r.shortcut,
    title: r.topic ? t('canned.topic', { topic: r.topic }) : t('canned.everyTopic'),
    onmousedown: (e) => { e.preventDefault(); pickCanned(r); },
  }, h('span', { class: 'key', text: '/' + r.shortcut }), h('span', { class: 'txt', dir: 'auto', text: r.text }))));
}

function pickCanned(r) {
  const input = $('input');
  const text = expandPlaceholders(r.text, C.context());
  input.value = text;
  closeCanned();
  input.focus();
  input.setSelectionRange(text.length, text.length);
  C.onPick?.();
}

// The composer's keydown while the list is open; true when the key was the list's.
export function cannedKeydown(e) {
  if (!C.open) return false;
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    const n = C.items.length;
    C.index = (C.index + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
    renderCanned();
    return true;
  }
  if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); pickCanned(C.items[C.index]); return true; }
  if (e.key === 'Escape') { e.preventDefault(); closeCanned(); return true; }
  return false;
}

function hide() { C.open = false; C.index = 0; $('canned').hidden = true; }

// Closes the list until the composer holds a new `/…` query (send, blur, Escape, pick).
export function closeCanned() { C.wanted = false; hide(); }
