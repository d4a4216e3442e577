// The team lead's desk in the console: the agent's status menu (available, away with a
// reason, the wrap-up countdown), SLA marks on live conversations, and the routing
// audit ("why this agent?") in a conversation's details for supervisors.

import { $, h, fmtMs } from './dom.js';
import { code, has, t, timeSec } from './i18n.js';

// ------------------------------------------------------------------ status

// Follows a `status` frame or ack: the status, the away reason, when wrap-up ends.
export function applyStatus(S, status, reason, endsInMs) {
  S.status = status;
  S.awayReason = status === 'away' ? reason || null : null;
  S.wrapUpUntil = status === 'wrap_up' && endsInMs != null ? Date.now() + endsInMs : null;
}

// Fills the away-reason picker from the welcome's `away_reasons`.
export function setupStatusMenu(S, choose) {
  const pick = $('away-reason');
  const reasons = S.me?.away_reasons || [];
  pick.replaceChildren(h('option', { value: '', text: t('status.awayPick') }), ...reasons.map((r) => h('option', { value: r, text: label(r) })));
  pick.onchange = () => { if (pick.value) choose('away', pick.value); };
  $('wrap-up-end').onclick = () => choose('available');
}

const label = (reason) => reason.charAt(0).toUpperCase() + reason.slice(1).replace(/_/g, ' ');

// The status buttons, the reason shown, and the wrap-up countdown.
export function paintStatus(S) {
  for (const b of document.querySelectorAll('.status button[data-status]')) b.setAttribute('aria-pressed', String(b.dataset.status === S.status));
  const pick = $('away-reason');
  if (document.activeElement !== pick) pick.value = S.status === 'away' && S.awayReason && [...pick.options].some((o) => o.value === S.awayReason) ? S.awayReason : '';
  const wrap = $('wrap-up');
  const left = S.status === 'wrap_up' && S.wrapUpUntil ? Math.max(0, S.wrapUpUntil - Date.now()) : null;
  wrap.hidden = S.status !== 'wrap_up';
  $('wrap-up-left').textContent = left == null ? t('status.wrapUp') : t('status.wrapUpLeft', { time: clockOf(left) });
  $('me-status').textContent = S.status === 'away' && S.awayReason ? t('status.awayReason', { reason: label(S.awayReason) }) : '';
}

const clockOf = (ms) => { const s = Math.ceil(ms / 1000); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`; };

// Repaints the countdown every second while in wrap-up.
export function tickStatus(S) {
  setInterval(() => { if (S.status === 'wrap_up') paintStatus(S); }, 1000);
}

// "away (lunch)", "wrap-up (0:27 left)" for the supervisor's agent table.
export function agentStatusText(a) {
  if (a.status === 'away' && a.away_reason) return t('st.awayReason', { reason: label(a.away_reason) });
  if (a.status === 'wrap_up') return a.wrap_up_ends_in_ms != null ? t('st.wrapUpLeft', { time: clockOf(a.wrap_up_ends_in_ms) }) : t('st.wrap_up');
  return code('st.', a.status) || '—';
}

// ------------------------------------------------------------------ SLA

// A cell with one mark per target of a live conversation (`sla` of /v1/conversations).
export function slaCell(c) {
  const marks = ['wait', 'first_response']
    .filter((k) => c.sla && c.sla[k])
    .map((k) => {
      const m = c.sla[k];
      const name = t('sla.' + k);
      return h('span', { class: 'sla sla-' + m.state, 'data-testid': 'sup-sla', 'data-target': k, 'data-state': m.state,
        title: t('sla.title', { name, elapsed: fmtMs(m.elapsed_ms), target: fmtMs(m.target_ms) }), text: `${name} ${code('sla.', m.state)}` });
    });
  return h('td', {}, marks.length ? marks : '—');
}

// ------------------------------------------------------------------ routing audit

// Loads a conversation's routing decisions (supervisors only).
export async function loadAudit(api, c, render) {
  try {
    const body = await api('/v1/conversations/' + encodeURIComponent(c.id) + '/routing');
    c.audit = body.decisions || [];
  } catch (err) {
    c.audit = { error: err.code || err.message };
  }
  render();
}

// Routing events (ev.*), rules (rule.*) and why an agent was passed over (pass.*) are
// in the locale tables; an unknown one shows as the hub sent it.
function passText(p) {
  switch (p.reason) {
    case 'away': return p.away_reason ? t('pass.awayReason', { reason: label(p.away_reason) }) : t('pass.away');
    case 'missing_skill': return t('pass.missing_skill', { skills: (p.missing || []).join(', ') });
    case 'at_capacity': return t('pass.at_capacity', { load: p.load, capacity: p.capacity });
    default: return code('pass.', p.reason);
  }
}

function decisionEl(d) {
  const who = d.chosen || d.agent;
  const head = `${timeSec(d.at)} · ${code('ev.', d.event)}${who ? ' — ' + who : ''}`;
  const extra = d.event === 'widened' ? t('audit.noLonger', { skills: (d.dropped_skills || []).join(', ') }) : '';
  return h('li', { 'data-testid': 'audit-decision', 'data-event': d.event },
    h('div', { class: 'audit-head', text: head + extra }),
    has('rule.' + d.rule) ? h('div', { class: 'muted small', text: t('audit.rule', { rule: t('rule.' + d.rule) }) }) : null,
    d.candidates?.length ? h('table', { class: 'grid audit-candidates', 'data-testid': 'audit-candidates' },
      h('thead', {}, h('tr', {}, ['audit.candidate', 'audit.load', 'audit.level', 'audit.idleSince'].map((k) => h('th', { text: t(k) })))),
      h('tbody', {}, d.candidates.map((c) => h('tr', {},
        h('td', { text: c.agent }), h('td', { text: `${c.load}/${c.capacity}` }), h('td', { text: String(c.level_sum) }),
        h('td', { text: c.idle_since_ms ? timeSec(c.idle_since_ms) : t('audit.never') }))))) : null,
    d.passed_over?.length ? h('div', { class: 'small', 'data-testid': 'audit-passed' },
      t('audit.passedOver', { list: d.passed_over.map((p) => `${p.agent} — ${passText(p)}`).join('; ') }),
      d.passed_over_total > d.passed_over.length ? t('audit.more', { n: d.passed_over_total - d.passed_over.length }) : '') : null);
}

// The details panel's "Routing" section.
export function auditSection(c, reload) {
  const a = c.audit;
  return [
    h('h3', {}, t('audit.title') + ' ', h('button', { type: 'button', class: 'ghost small', 'data-testid': 'audit-refresh', onclick: reload, text: t('audit.refresh') })),
    a == null ? h('p', { class: 'muted small', text: t('audit.loading') })
      : a.error ? h('p', { class: 'error', text: t('audit.failed', { error: a.error }) })
      : !a.length ? h('p', { class: 'muted small', text: t('audit.none') })
      : h('ol', { class: 'audit', 'data-testid': 'routing-audit' }, a.map(decisionEl)),
  ];
}
