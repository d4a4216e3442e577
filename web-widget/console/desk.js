// The team lead's desk in the console: the agent's status menu (available, away with a
// reason, the wrap-up countdown), SLA marks on live conversations, and the routing
// audit ("why this agent?") in a conversation's details for supervisors.

import { $, h, fmtMs } from './dom.js';

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
  pick.replaceChildren(h('option', { value: '', text: 'Away…' }), ...reasons.map((r) => h('option', { value: r, text: label(r) })));
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
  $('wrap-up-left').textContent = left == null ? 'Wrap-up' : `Wrap-up ${clockOf(left)}`;
  $('me-status').textContent = S.status === 'away' && S.awayReason ? `Away: ${label(S.awayReason)}` : '';
}

const clockOf = (ms) => { const s = Math.ceil(ms / 1000); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`; };

// Repaints the countdown every second while in wrap-up.
export function tickStatus(S) {
  setInterval(() => { if (S.status === 'wrap_up') paintStatus(S); }, 1000);
}

// "away (lunch)", "wrap-up (0:27 left)" for the supervisor's agent table.
export function agentStatusText(a) {
  if (a.status === 'away' && a.away_reason) return `away (${label(a.away_reason)})`;
  if (a.status === 'wrap_up') return a.wrap_up_ends_in_ms != null ? `wrap-up (${clockOf(a.wrap_up_ends_in_ms)} left)` : 'wrap-up';
  return a.status || '—';
}

// ------------------------------------------------------------------ SLA

const SLA_TEXT = { ok: 'on track', at_risk: 'at risk', breached: 'breached', met: 'met' };

// A cell with one mark per target of a live conversation (`sla` of /v1/conversations).
export function slaCell(c) {
  const marks = [['wait', 'Wait'], ['first_response', 'First reply']]
    .filter(([k]) => c.sla && c.sla[k])
    .map(([k, name]) => {
      const m = c.sla[k];
      return h('span', { class: 'sla sla-' + m.state, 'data-testid': 'sup-sla', 'data-target': k, 'data-state': m.state,
        title: `${name}: ${fmtMs(m.elapsed_ms)} of ${fmtMs(m.target_ms)}`, text: `${name} ${SLA_TEXT[m.state] || m.state}` });
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

const EVENT_TEXT = {
  offered: 'Offered', assigned: 'Assigned', queued: 'Waiting: nobody eligible', declined: 'Declined',
  expired: 'Offer expired', withdrawn: 'Offer withdrawn', widened: 'Requirements widened', requeued: 'Queued again',
};
const RULE_TEXT = {
  ranking: 'least loaded, then highest skill level, then longest idle',
  preferred_agent: 'the customer’s previous agent (sticky)',
  serving_order: 'the agent came free and took the first waiting conversation',
  requested: 'named in a transfer',
  no_eligible_agent: 'no eligible agent',
};

function passText(p) {
  switch (p.reason) {
    case 'away': return p.away_reason ? `away (${label(p.away_reason)})` : 'away';
    case 'wrap_up': return 'in wrap-up';
    case 'missing_skill': return `lacks ${(p.missing || []).join(', ')}`;
    case 'declined_before': return 'declined it before';
    case 'expired_before': return 'let it expire before';
    case 'owner': return 'owns it';
    case 'at_capacity': return `at capacity (${p.load}/${p.capacity})`;
    default: return p.reason;
  }
}

function decisionEl(d) {
  const who = d.chosen || d.agent;
  const head = `${new Date(d.at).toLocaleTimeString()} · ${EVENT_TEXT[d.event] || d.event}${who ? ' — ' + who : ''}`;
  const extra = d.event === 'widened' ? ` (no longer requires ${(d.dropped_skills || []).join(', ')})` : '';
  return h('li', { 'data-testid': 'audit-decision', 'data-event': d.event },
    h('div', { class: 'audit-head', text: head + extra }),
    RULE_TEXT[d.rule] ? h('div', { class: 'muted small', text: 'Rule: ' + RULE_TEXT[d.rule] }) : null,
    d.candidates?.length ? h('table', { class: 'grid audit-candidates', 'data-testid': 'audit-candidates' },
      h('thead', {}, h('tr', {}, ['Candidate', 'Load', 'Level', 'Idle since'].map((t) => h('th', { text: t })))),
      h('tbody', {}, d.candidates.map((c) => h('tr', {},
        h('td', { text: c.agent }), h('td', { text: `${c.load}/${c.capacity}` }), h('td', { text: String(c.level_sum) }),
        h('td', { text: c.idle_since_ms ? new Date(c.idle_since_ms).toLocaleTimeString() : 'never' }))))) : null,
    d.passed_over?.length ? h('div', { class: 'small', 'data-testid': 'audit-passed' },
      'Passed over: ', d.passed_over.map((p) => `${p.agent} — ${passText(p)}`).join('; '),
      d.passed_over_total > d.passed_over.length ? ` (+${d.passed_over_total - d.passed_over.length} more)` : '') : null);
}

// The details panel's "Routing" section.
export function auditSection(c, reload) {
  const a = c.audit;
  return [
    h('h3', {}, 'Routing ', h('button', { type: 'button', class: 'ghost small', 'data-testid': 'audit-refresh', onclick: reload, text: 'Refresh' })),
    a == null ? h('p', { class: 'muted small', text: 'Loading…' })
      : a.error ? h('p', { class: 'error', text: 'Could not load the routing audit: ' + a.error })
      : !a.length ? h('p', { class: 'muted small', text: 'No routing decisions recorded.' })
      : h('ol', { class: 'audit', 'data-testid': 'routing-audit' }, a.map(decisionEl)),
  ];
}
