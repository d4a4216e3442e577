// The supervisor's reports page: a period, a bucket size and a grouping; charts of
// volume, wait and first-response percentiles, satisfaction and SLA over time for one
// group; a table of every group over the period; a CSV export. Charts are inline SVG:
// no library, nothing to download.

import { $, h, fmtMs } from './dom.js';
import { bucketLabel, num, t } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c'];

function s(tag, attrs = {}, ...kids) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) n.setAttribute(k, String(v));
  for (const c of kids.flat()) if (c != null) n.append(c);
  return n;
}

const day = (d) => d.toISOString().slice(0, 10);

let R = null; // { api, csv, report }

/** Wires the page's controls; `api(path)` answers JSON, `csv(path)` the CSV text. */
export function initReports(api, csv) {
  R = { api, csv, report: null };
  const to = new Date(Date.now() + 86_400_000);
  $('rep-to').value = day(to);
  $('rep-from').value = day(new Date(to - 7 * 86_400_000));
  $('rep-form').addEventListener('submit', (e) => { e.preventDefault(); loadReport(); });
  $('rep-load').addEventListener('click', loadReport);
  for (const id of ['rep-bucket', 'rep-by']) $(id).addEventListener('change', loadReport);
  $('rep-group').addEventListener('change', paintReport);
  $('rep-export').addEventListener('click', exportCsv);
}

function query() {
  const p = new URLSearchParams({ from: $('rep-from').value, to: $('rep-to').value, bucket: $('rep-bucket').value, by: $('rep-by').value });
  return '/v1/reports?' + p;
}

export async function loadReport() {
  if (!R) return;
  $('rep-error').textContent = '';
  $('rep-status').textContent = t('rep.loading');
  try {
    R.report = await R.api(query());
    const pick = $('rep-group');
    const keep = pick.value;
    pick.replaceChildren(...R.report.groups.map((g) => h('option', { value: g, text: g })));
    if (R.report.groups.includes(keep)) pick.value = keep;
    $('rep-status').textContent = `${R.report.from_iso} → ${R.report.to_iso}`;
    paintReport();
  } catch (err) {
    $('rep-status').textContent = '';
    $('rep-error').textContent = t('rep.failed', { error: err.message || err.code });
  }
}

async function exportCsv() {
  try {
    const text = await R.csv(query());
    const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
    const a = h('a', { href: url, download: `switchboard-report-${$('rep-from').value}-${$('rep-to').value}-${$('rep-by').value}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    $('rep-error').textContent = t('rep.exportFailed', { error: err.message || err.code });
  }
}

function paintReport() {
  const rep = R?.report;
  if (!rep) return;
  const group = $('rep-group').value || rep.groups[0];
  const index = rep.groups.indexOf(group);
  const rows = rep.buckets.map((b) => ({ start: b.start, f: b.groups[index] || {} }));
  const x = rows.map((r) => bucketLabel(r.start, rep.bucket === 'hour'));
  const pick = (fn) => rows.map((r) => { const v = fn(r.f); return v == null ? null : v; });
  const survey = rows.some((r) => r.f.nps) ? 'nps' : 'csat';
  $('rep-charts').replaceChildren(
    chart(t('rep.volume'), 'rep-chart-volume', x, [
      [t('rep.started'), pick((f) => f.chats?.started)], [t('rep.answered'), pick((f) => f.chats?.answered)],
      [t('rep.abandonedInQueue'), pick((f) => f.chats?.abandoned_in_queue)]], (v) => num(Math.round(v)), { whole: true }),
    chart(t('rep.wait'), 'rep-chart-wait', x, [
      ['p50', pick((f) => f.wait_ms?.p50)], ['p90', pick((f) => f.wait_ms?.p90)]], fmtMs),
    chart(t('rep.firstResponse'), 'rep-chart-first-response', x, [
      ['p50', pick((f) => f.first_response_ms?.p50)], ['p90', pick((f) => f.first_response_ms?.p90)]], fmtMs),
    survey === 'nps'
      ? chart('NPS', 'rep-chart-satisfaction', x, [['NPS', pick((f) => f.nps?.score)]], (v) => num(v, 0))
      : chart(t('rep.csat'), 'rep-chart-satisfaction', x, [['CSAT', pick((f) => f.csat?.mean)]], (v) => num(v, 2)),
    chart(t('rep.slaMet'), 'rep-chart-sla', x, [
      [t('rep.slaWait'), pick((f) => f.sla?.wait?.pct_met)], [t('rep.slaFirst'), pick((f) => f.sla?.first_response?.pct_met)]],
    (v) => t('unit.pct', { n: num(v, 0) })),
  );
  paintTable(rep);
}

/** A line chart of a few series over the buckets; missing points break the line. */
function chart(title, testid, x, series, fmt, { whole = false } = {}) {
  const W = 460, H = 180, L = 56, B = 28, T = 10;
  const values = series.flatMap(([, v]) => v).filter((v) => v != null);
  const top = Math.max(1, ...values);
  // Whole counts get an even top so the middle gridline is a whole number too.
  const max = whole ? Math.max(2, Math.ceil(top / 2) * 2) : top;
  const px = (i) => L + (x.length < 2 ? (W - L) / 2 : (i * (W - L - 10)) / (x.length - 1));
  const py = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, class: 'rep-svg' });
  for (const f of [0, 0.5, 1]) {
    svg.append(s('line', { x1: L, x2: W, y1: py(max * f), y2: py(max * f), class: 'rep-grid' }),
      s('text', { x: L - 6, y: py(max * f) + 4, 'text-anchor': 'end', class: 'rep-axis' }, fmt(max * f)));
  }
  // As many labels as fit at about 7 px a character.
  const fit = Math.max(2, Math.floor((W - L) / (7 * (x[0]?.length || 5) + 10)));
  const every = Math.max(1, Math.ceil(x.length / fit));
  x.forEach((label, i) => { if (i % every === 0) svg.append(s('text', { x: px(i), y: H - 8, 'text-anchor': 'middle', class: 'rep-axis' }, label)); });
  series.forEach(([name, v], k) => {
    let d = '';
    v.forEach((y, i) => { if (y == null) return; d += `${d && v[i - 1] != null ? 'L' : 'M'}${px(i).toFixed(1)},${py(y).toFixed(1)}`; });
    if (d) svg.append(s('path', { d, fill: 'none', stroke: COLORS[k % COLORS.length], 'stroke-width': 2 }));
    v.forEach((y, i) => { if (y != null) svg.append(s('circle', { cx: px(i), cy: py(y), r: 3, fill: COLORS[k % COLORS.length] }, s('title', {}, `${name} ${x[i]}: ${fmt(y)}`))); });
  });
  const legend = h('div', { class: 'rep-legend' }, series.map(([name], k) => h('span', {}, h('i', { class: 'c' + (k % COLORS.length) }), name)));
  return h('figure', { class: 'rep-chart', 'data-testid': testid, 'data-points': String(values.length) }, h('figcaption', { text: title }), svg, legend);
}

const pct = (v) => (v == null ? '—' : t('unit.pct', { n: num(v, 1) }));
const dec = (v, d = 2) => (v == null ? '—' : num(Number(v), d));

function paintTable(rep) {
  const byAgent = rep.by === 'agent';
  const head = ['', 'rep.started', 'rep.answered', 'rep.abandoned', 'rep.transferred', 'rep.escalated', 'rep.handled', 'rep.waitP', 'rep.firstP',
    'rep.handle', 'rep.resolution', 'rep.satisfaction', 'rep.slaCols'];
  if (byAgent) head.push('rep.available', 'rep.occupancy', 'rep.away', 'rep.wrapUp');
  $('rep-table').replaceChildren(
    h('thead', {}, h('tr', {}, head.map((k) => h('th', { text: k ? t(k) : '' })))),
    h('tbody', {}, rep.totals.map((f) => {
      const sat = f.nps ? t('rep.nps', { score: dec(f.nps.score, 0), n: f.nps.responses })
        : f.csat ? t('rep.csatCell', { mean: dec(f.csat.mean), n: f.csat.responses }) : '—';
      const cells = [f.group, ...[f.chats.started, f.chats.answered, f.chats.abandoned_in_queue, f.chats.transferred, f.chats.escalated,
        f.chats.handled].map((v) => (v == null ? '—' : num(v))), `${fmtMs(f.wait_ms.p50)} / ${fmtMs(f.wait_ms.p90)}`,
        `${fmtMs(f.first_response_ms.p50)} / ${fmtMs(f.first_response_ms.p90)}`, fmtMs(f.handle_ms.p50), fmtMs(f.resolution_ms.p50),
        sat, `${pct(f.sla?.wait?.pct_met)} / ${pct(f.sla?.first_response?.pct_met)}`];
      if (byAgent) {
        const at = f.agent_time || {};
        const away = Object.entries(at.away_by_reason || {}).map(([r, ms]) => `${r} ${fmtMs(ms)}`).join(', ');
        cells.push(fmtMs(at.available_ms), pct(at.occupancy_pct), fmtMs(at.away_ms) + (away ? ` (${away})` : ''), fmtMs(at.wrap_up_ms));
      }
      return h('tr', { 'data-testid': 'rep-row', 'data-group': f.group }, cells.map((c, i) => h(i ? 'td' : 'th', { text: String(c) })));
    })));
}
