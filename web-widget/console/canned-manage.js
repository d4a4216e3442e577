// The supervisor view's canned-response panel (issue 18): list, add, edit, delete over
// /v1/canned. The hub decides who may change what (admin: any; a supervisor: the topics
// whose skills it holds) and its error message is shown as it comes. Text from the hub is
// only ever set with textContent.

import { $, h } from './dom.js';
import { dateTime, t } from './i18n.js';
import { rest } from './rest.js';

const M = { hub: '', token: () => '', topics: () => [], editing: null, armed: null, loading: 0 };

// `hub`: the hub's origin; `token()`: the agent's bearer token; `topics()`: known topics.
export function initCannedPanel({ hub, token, topics }) {
  Object.assign(M, { hub, token, topics });
  $('canned-form').addEventListener('submit', (e) => { e.preventDefault(); save(); });
  $('canned-cancel').addEventListener('click', () => edit(null));
}

// A REST call; throws an Error with the hub's `code` and `message` when it is refused.
function call(method, path, json) {
  return rest(M.hub, M.token(), method, path, { json });
}

export async function loadCannedPanel() {
  const gen = ++M.loading;
  try {
    const body = await call('GET', '/v1/canned');
    if (gen !== M.loading) return;
    render(body.canned_responses || []);
  } catch (err) {
    $('canned-error').textContent = t('cm.loadFailed', { error: err.message || err.code });
  }
}

function render(list) {
  $('canned-topics').replaceChildren(...M.topics().map((topic) => h('option', { value: topic })));
  $('sup-canned').replaceChildren(...list.map((r) => h('tr', { 'data-testid': 'sup-canned-row', 'data-key': r.shortcut, 'data-topic': r.topic || '' },
    h('td', {}, h('code', { text: '/' + r.shortcut })),
    h('td', { text: r.topic || t('cm.allTopics') }),
    h('td', { class: 'canned-text', dir: 'auto', text: r.text }),
    h('td', { class: 'muted small', text: dateTime(r.updated_at) }),
    h('td', { class: 'row-actions' },
      h('button', { type: 'button', class: 'ghost', 'data-testid': 'canned-edit', text: t('cm.edit'), onclick: () => edit(r) }),
      h('button', {
        type: 'button', class: 'ghost danger', 'data-testid': 'canned-delete',
        text: t(M.armed === r.id ? 'cm.reallyDelete' : 'cm.delete'), onclick: () => remove(r, list),
      })))));
}

function edit(r) {
  M.editing = r ? r.id : null;
  $('canned-shortcut').value = r ? r.shortcut : '';
  $('canned-topic').value = r ? r.topic || '' : '';
  $('canned-text').value = r ? r.text : '';
  $('canned-save').textContent = t(r ? 'cm.save' : 'cm.add');
  $('canned-cancel').hidden = !r;
  $('canned-error').textContent = '';
  if (r) $('canned-text').focus();
}

async function save() {
  const body = {
    shortcut: $('canned-shortcut').value.trim(),
    text: $('canned-text').value,
    topic: $('canned-topic').value.trim() || null,
  };
  try {
    if (M.editing) await call('PATCH', '/v1/canned/' + encodeURIComponent(M.editing), body);
    else await call('POST', '/v1/canned', body);
    edit(null);
    await loadCannedPanel();
  } catch (err) {
    $('canned-error').textContent = err.message || err.code;
  }
}

// The first click arms the button, the second deletes.
async function remove(r, list) {
  if (M.armed !== r.id) { M.armed = r.id; render(list); return; }
  M.armed = null;
  try {
    await call('DELETE', '/v1/canned/' + encodeURIComponent(r.id));
    if (M.editing === r.id) edit(null);
    $('canned-error').textContent = '';
  } catch (err) {
    $('canned-error').textContent = err.message || err.code;
  }
  await loadCannedPanel();
}
