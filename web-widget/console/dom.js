// Small DOM helpers shared by the console's modules.

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

// 75000 → "1 min 15 s".
export function fmtMs(ms) {
  if (ms == null || Number.isNaN(+ms)) return '—';
  if (ms < 1000) return Math.round(ms) + ' ms';
  const s = Math.round(ms / 1000);
  return s < 60 ? s + ' s' : Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
}
