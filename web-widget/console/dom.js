// Small DOM helpers shared by the console's modules.

import { t } from './i18n.js';

export const $ = (id) => document.getElementById(id);

// h('div', {class: 'x', text: 'hi', onclick: fn}, ...children): an element.
export function h(tag, attrs = {}, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'text') n.textContent = v;
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat()) if (c != null && c !== false) n.append(c);
  return n;
}

// 75000 → "1 min 15 s" (in the console's language).
export function fmtMs(ms) {
  if (ms == null || Number.isNaN(+ms)) return '—';
  if (ms < 1000) return t('unit.ms', { n: Math.round(ms) });
  const s = Math.round(ms / 1000);
  return s < 60 ? t('unit.s', { n: s }) : t('unit.minS', { min: Math.floor(s / 60), s: s % 60 });
}
