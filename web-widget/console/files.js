// Files in a conversation (docs/protocol.md, "Files and images"): uploading one (the
// paperclip, a pasted image, a file dropped on the conversation), and showing the files
// of messages — raster images inline, anything else as a download link. Links are
// short-lived and signed by the hub, so each is asked for when shown and again when it
// has expired.

import { h } from './dom.js';
import { t, num } from './i18n.js';
import { rest } from './rest.js';

const INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

let hub = '';
let token = () => '';
const links = new Map(); // `${conv}/${id}` -> {url, expires_at}

export function initFiles(opts) {
  hub = opts.hub;
  token = opts.token;
}

/** Uploads `file` to conversation `conv`; resolves to the attachment (`id`, `name`, `size`, `type`). */
export async function uploadFile(conv, file) {
  const path = `/v1/conversations/${encodeURIComponent(conv)}/attachments?name=${encodeURIComponent(file.name || 'file')}`;
  const body = await rest(hub, token(), 'POST', path, { body: file, headers: { 'Content-Type': file.type || 'application/octet-stream' } });
  links.set(`${conv}/${body.id}`, { url: body.url, expires_at: body.expires_at });
  return { id: body.id, name: body.name, size: body.size, type: body.type };
}

/** A working link to a file: the one known while it has a minute left, else a fresh one. */
async function link(conv, id) {
  const key = `${conv}/${id}`;
  const known = links.get(key);
  if (known && known.expires_at - Date.now() > 60_000) return hub + known.url;
  const body = await rest(hub, token(), 'GET', `/v1/conversations/${encodeURIComponent(conv)}/attachments/${encodeURIComponent(id)}`);
  links.set(key, { url: body.url, expires_at: body.expires_at });
  return hub + body.url;
}

/** "48 KB". */
export function fileSize(bytes) {
  if (bytes < 1024) return t('file.bytes', { n: bytes });
  if (bytes < 1024 * 1024) return t('file.kb', { n: num(Math.round(bytes / 1024)) });
  return t('file.mb', { n: num(bytes / (1024 * 1024), 1) });
}

/** The element showing a message's file: an image, or a link that downloads it. */
export function attachmentEl(conv, a) {
  const label = `${a.name} (${fileSize(a.size)})`;
  if (INLINE.has(a.type)) {
    const img = h('img', { class: 'attachment-img', alt: a.name, title: label, 'data-testid': 'attachment-image', loading: 'lazy' });
    let retried = false;
    const show = () => link(conv, a.id).then((url) => { img.src = url; }, () => img.replaceWith(gone(a)));
    img.addEventListener('error', () => {
      // An expired link (a console left open): one fresh try.
      if (retried) { img.replaceWith(gone(a)); return; }
      retried = true;
      links.delete(`${conv}/${a.id}`);
      show();
    });
    img.addEventListener('click', () => link(conv, a.id).then((url) => window.open(url, '_blank', 'noopener')));
    show();
    return h('figure', { class: 'attachment' }, img, h('figcaption', { class: 'small muted', text: label }));
  }
  const anchor = h('a', { class: 'attachment-link', href: '#', 'data-testid': 'attachment-link', text: label });
  anchor.addEventListener('click', (e) => {
    e.preventDefault();
    link(conv, a.id).then((url) => {
      const go = h('a', { href: url, download: a.name, rel: 'noopener' });
      document.body.append(go);
      go.click();
      go.remove();
    }, () => anchor.replaceWith(gone(a)));
  });
  return h('div', { class: 'attachment' }, anchor);
}

function gone(a) {
  return h('div', { class: 'attachment gone small muted', text: t('file.gone', { name: a.name }) });
}
