// The team lead's desk in the console: the status menu with away reasons, the wrap-up
// countdown after a close, SLA marks in the supervisor's live conversations, and the
// routing audit in a conversation's details.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const TOPICS = `
[[topic]]
name = "general"
default = true
wrap_up_s = 30
sla = { wait_ms = 300, first_response_ms = 600000 }
`;

describe('lead desk in the console', { timeout: 240000 }, () => {
  let hub, browser, sup, alice, cust;

  before(async () => {
    hub = await H.startHub({ topics: TOPICS });
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, alice, sup]);

  it('an agent goes away with a reason, and the supervisor sees it', step(async () => {
    const aliceToken = await hub.createAgent('alice', { name: 'Alice', capacity: 1 });
    const supToken = await hub.createAgent('sam', { name: 'Sam', supervisor: true, capacity: 1 });
    alice = await H.newPage(browser, { name: 'alice' });
    await H.loginConsole(alice, hub, aliceToken);
    await alice.getByTestId('status-reason').selectOption('lunch');
    await alice.waitForFunction(() => window.SwitchboardConsole.state().status === 'away');
    await H.until(async () => (await alice.getByTestId('me-status').innerText()) === 'Away: Lunch', { what: 'reason shown' });

    sup = await H.newPage(browser, { name: 'sam', viewport: { width: 1400, height: 900 } });
    await H.loginConsole(sup, hub, supToken, { hash: '#supervisor' });
    const row = sup.locator('[data-testid=sup-agent][data-agent-id=alice]');
    await H.until(async () => (await row.count()) && /away \(Lunch\)/.test(await row.getByTestId('sup-agent-status').innerText()),
      { what: 'supervisor sees away (Lunch)' });
  }));

  it('a waiting customer breaches the wait target and the supervisor sees why', step(async () => {
    // The widget chats only while someone is available: Alice is, while it loads.
    await H.setAvailable(alice);
    cust = await H.newPage(browser, { name: 'customer', viewport: { width: 1100, height: 760 } });
    await H.openWidget(cust, hub);
    await alice.getByTestId('status-reason').selectOption('lunch');
    await alice.waitForFunction(() => window.SwitchboardConsole.state().status === 'away');
    await H.widgetSend(cust, 'Anyone?');
    const conv = sup.locator('[data-testid=sup-conv][data-state=queued]');
    await conv.waitFor({ timeout: 15000 });
    const wait = conv.locator('[data-testid=sup-sla][data-target=wait]');
    await H.until(async () => (await wait.count()) && (await wait.getAttribute('data-state')) === 'breached',
      { what: 'wait target breached', timeout: 20000 });
    await H.screenshot(sup, 'console-sla');

    // Alice comes back and takes it; the supervisor monitors and reads the audit.
    await H.setAvailable(alice);
    await alice.getByTestId('offer').waitFor({ timeout: 20000 });
    await alice.getByTestId('offer-accept').click();
    await conv.getByTestId('sup-monitor').click();
    const audit = sup.getByTestId('routing-audit');
    await audit.waitFor({ timeout: 15000 });
    const queued = audit.locator('[data-testid=audit-decision][data-event=queued]');
    await queued.first().waitFor();
    assert.match(await queued.first().innerText(), /alice — away \(Lunch\)/);
    assert.match(await queued.first().innerText(), /sam — at capacity|sam — away/);
    await sup.getByTestId('audit-refresh').click();
    const offered = audit.locator('[data-testid=audit-decision][data-event=offered]');
    await offered.first().waitFor({ timeout: 10000 });
    assert.match(await offered.first().innerText(), /Offered — alice/);
    assert.match(await offered.first().getByTestId('audit-candidates').innerText(), /alice/);
    await H.screenshot(sup, 'console-routing-audit');
  }));

  it('closing a chat starts the wrap-up countdown, which the agent may end', step(async () => {
    await alice.getByTestId('close-open').click();
    await alice.getByTestId('close-submit').click();
    const wrap = alice.getByTestId('wrap-up');
    await wrap.waitFor({ state: 'visible', timeout: 15000 });
    assert.match(await wrap.innerText(), /Wrap-up 0:(2\d|30)/);
    assert.equal((await H.consoleState(alice)).status, 'wrap_up');
    await H.screenshot(alice, 'console-wrap-up');
    await alice.getByTestId('wrap-up-end').click();
    await alice.waitForFunction(() => window.SwitchboardConsole.state().status === 'available');
    await wrap.waitFor({ state: 'hidden' });
  }));
});
