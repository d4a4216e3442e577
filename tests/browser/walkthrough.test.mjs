// Fixes from a walkthrough in a real browser (issue 18): offer alerts, names instead of
// ids, a persistent sign-in, the transfer picker and the hand-off view, console details,
// and the widget's reload fidelity.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

// Records desktop notifications and beeps instead of making them.
const STUB_ALERTS = () => {
  window.__notes = []; window.__beeps = 0; window.__asked = 0;
  window.Notification = class {
    constructor(title, opts) { window.__notes.push({ title, body: opts && opts.body }); }
    close() {}
    static requestPermission() { window.__asked++; window.Notification.permission = 'granted'; return Promise.resolve('granted'); }
  };
  window.Notification.permission = 'default';
  window.AudioContext = class {
    constructor() { this.currentTime = 0; this.destination = {}; }
    createOscillator() { window.__beeps++; return { frequency: {}, connect() {}, start() {}, stop() {} }; }
    createGain() { return { gain: { setValueAtTime() {}, exponentialRampToValueAtTime() {} }, connect() {} }; }
  };
};

const HIDE = () => {
  Object.defineProperty(document, 'hidden', { value: true, configurable: true });
  Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
};
const SHOW = () => {
  delete document.hidden; delete document.visibilityState;
  document.dispatchEvent(new Event('visibilitychange'));
};
const alerts = (page) => page.evaluate(() => ({ notes: window.__notes.length, beeps: window.__beeps, asked: window.__asked }));

describe('walkthrough fixes', { timeout: 120000 }, () => {
  let hub, browser, alice, bob, cust, cust2, cust3, convId, aliceToken, bobToken;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
    aliceToken = await hub.createAgent('alice', { name: 'Alice', supervisor: true });
    bobToken = await hub.createAgent('bob', { name: 'Bob' });
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [alice, bob, cust, cust2, cust3]);

  it('an offer beeps and notifies while the tab is hidden; the setting turns both off', step(async () => {
    alice = await H.newPage(browser, { name: 'alice' });
    await alice.context().addInitScript(STUB_ALERTS);
    await H.loginConsole(alice, hub, aliceToken);
    await H.setAvailable(alice); // the first click after sign-in asks for permission
    assert.equal((await alerts(alice)).asked, 1);
    await alice.evaluate(HIDE);

    cust = await H.newPage(browser, { name: 'cust' });
    await H.openWidget(cust, hub);
    assert.match(await cust.getByTestId('demo-hint').innerText(), /first sign an agent in/i);
    await H.widgetSend(cust, 'Hello from the walkthrough');
    await alice.getByTestId('offer').waitFor({ timeout: 20000 });
    await H.until(async () => (await alerts(alice)).notes === 1, { what: 'one notification' });
    assert.deepEqual(await alerts(alice), { notes: 1, beeps: 1, asked: 1 });
    convId = await alice.getByTestId('offer').getAttribute('data-conversation-id');
    await alice.evaluate(SHOW);
    await alice.getByTestId('offer-accept').click();
    await alice.locator('[data-testid=msg][data-role=customer]', { hasText: 'Hello from the walkthrough' }).waitFor();

    // Alerts off (kept in localStorage): the next offer is silent.
    await alice.getByTestId('alerts-toggle').uncheck();
    assert.equal(await alice.evaluate(() => localStorage.getItem('switchboard.console.alerts')), 'off');
    await alice.evaluate(HIDE);
    cust2 = await H.newPage(browser, { name: 'cust2' });
    await H.openWidget(cust2, hub);
    await H.widgetSend(cust2, 'Second customer here');
    await H.until(async () => (await alice.getByTestId('offer').count()) === 1, { timeout: 20000, what: 'second offer' });
    assert.deepEqual(await alerts(alice), { notes: 1, beeps: 1, asked: 1 });
    await alice.evaluate(SHOW);
    await alice.getByTestId('offer-decline').click();
    await alice.getByTestId('alerts-toggle').check();
  }));

  it('typing shows a name, never a visitor id', step(async () => {
    await alice.locator(`[data-testid=tab][data-conversation-id="${convId}"]`).click();
    await cust.getByTestId('sb-input').fill('I am typing something');
    await H.until(async () => /is typing/.test(await alice.getByTestId('typing').innerText()), { what: 'typing line' });
    const line = await alice.getByTestId('typing').innerText();
    assert.match(line, /^Visitor \w{6} is typing/);
    assert.doesNotMatch(line, /v_/);
    await cust.getByTestId('sb-input').press('Enter');
  }));

  it('sign-in survives a new tab; Sign out clears it', step(async () => {
    const tab = await alice.context().newPage();
    await tab.goto(hub.url + '/console/');
    await tab.waitForFunction(() => window.SwitchboardConsole && window.SwitchboardConsole.state().connection === 'open', null, { timeout: 15000 });
    assert.equal(await tab.evaluate(() => localStorage.getItem('switchboard.console.token')), aliceToken);
    await tab.getByTestId('logout').click();
    await tab.getByTestId('login-token').waitFor();
    assert.equal(await tab.evaluate(() => localStorage.getItem('switchboard.console.token')), null);
    await tab.reload();
    await tab.getByTestId('login-token').waitFor();
    await tab.close();
    // Alice steps away: the second customer's chat waits for Bob.
    await alice.getByTestId('status-away').click();
  }));

  it('transfer: the customer reads names, the previous owner sees the hand-off', step(async () => {
    bob = await H.newPage(browser, { name: 'bob' });
    await H.loginConsole(bob, hub, bobToken);
    await H.setAvailable(bob);
    await alice.locator(`[data-testid=tab][data-conversation-id="${convId}"]`).click();
    await alice.getByTestId('transfer-open').click();
    await alice.getByTestId('transfer-kind-agent').check();
    // A supervisor picks from the agents, with their status and load.
    const bobOption = alice.locator('[data-testid=transfer-agent] option[value=bob]');
    await bobOption.waitFor({ state: 'attached' });
    assert.match(await bobOption.innerText(), /^Bob — available · \d\/3 chats$/);
    assert.ok(await alice.getByTestId('transfer-target').isHidden());
    await alice.getByTestId('transfer-agent').selectOption('bob');
    await alice.getByTestId('transfer-submit').click();
    // (Bob is offered the second customer's chat too, still queued.)
    const offer = bob.locator(`[data-testid=offer][data-conversation-id="${convId}"]`);
    await offer.waitFor({ timeout: 20000 });
    await offer.getByTestId('offer-accept').click();
    await cust.getByTestId('sb-system').filter({ hasText: 'Transferring you to Bob\u2026' }).waitFor();
    assert.equal(await cust.getByTestId('sb-system').filter({ hasText: /\bbob\b/ }).count(), 0, 'no agent id');

    await H.until(async () => /Handed over to Bob/.test(await alice.getByTestId('conv-banner').innerText()), { what: 'hand-off banner' });
    assert.ok(await alice.getByTestId('transfer-open').isDisabled());
    assert.ok(await alice.getByTestId('close-open').isDisabled());
    assert.ok(await alice.getByTestId('composer-input').isDisabled());

    await H.consoleSend(bob, 'Bob here, leaving you now');
    await bob.getByTestId('close-open').click();
    await bob.getByTestId('close-tags').fill('refund, vip');
    await bob.getByTestId('close-submit').click();
    await cust.getByTestId('sb-system').filter({ hasText: 'Chat ended' }).waitFor();
    // The closed chat shows its tags.
    await H.until(async () => /Tags: refund, vip/.test(await bob.getByTestId('conv-banner').innerText()), { what: 'tags on the closed chat' });
    await bob.getByTestId('detail-tags').filter({ hasText: 'refund, vip' }).waitFor();
  }));

  it('a supervisor confirms before closing a chat another agent owns', step(async () => {
    const offer = bob.getByTestId('offer');
    await offer.waitFor({ timeout: 20000 });
    const id2 = await offer.getAttribute('data-conversation-id');
    await offer.getByTestId('offer-accept').click();
    await bob.locator('[data-testid=msg][data-role=customer]', { hasText: 'Second customer here' }).waitFor();

    await alice.getByTestId('supervisor-tab').click();
    await alice.locator(`[data-testid=sup-conv][data-conversation-id="${id2}"] [data-testid=sup-monitor]`).click();
    await H.until(async () => (await H.consoleState(alice)).active === id2, { what: 'monitoring' });
    await alice.getByTestId('close-open').click();
    let asked = '';
    alice.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
    await alice.getByTestId('close-submit').click();
    await H.until(async () => asked !== '', { what: 'a confirmation' });
    assert.match(asked, /Bob's, not yours/);
    assert.ok(await alice.getByTestId('close-dialog').isVisible(), 'dismissed: nothing closed');
    alice.once('dialog', (d) => d.accept());
    await alice.getByTestId('close-submit').click();
    await cust2.getByTestId('sb-system').filter({ hasText: 'Chat ended' }).waitFor();
  }));

  it('details: note contrast, focus ring, 16px widget input, customer panel on narrow screens', step(async () => {
    const ratio = await alice.getByTestId('note-toggle').evaluate((el) => {
      const rgb = (s) => s.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
      const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
        .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
      const cs = getComputedStyle(el);
      let bg = cs.backgroundColor;
      if (/rgba\(0, 0, 0, 0\)|transparent/.test(bg)) bg = 'rgb(255, 255, 255)';
      const [a, b] = [lum(rgb(cs.color)), lum(rgb(bg))].sort((x, y) => y - x);
      return (a + 0.05) / (b + 0.05);
    });
    assert.ok(ratio >= 4.5, `note button contrast ${ratio.toFixed(2)}`);

    await alice.getByTestId('alerts-toggle').focus();
    await alice.keyboard.press('Tab');
    const ring = await alice.evaluate(() => { const cs = getComputedStyle(document.activeElement); return [document.activeElement.id, cs.outlineStyle, cs.outlineWidth]; });
    assert.deepEqual(ring, ['logout', 'solid', '2px']);

    assert.equal(await cust.getByTestId('sb-input').evaluate((el) => getComputedStyle(el).fontSize), '16px');

    await alice.getByTestId('view-inbox').click();
    await alice.setViewportSize({ width: 1000, height: 760 });
    assert.ok(await alice.getByTestId('customer-details').isHidden());
    await alice.getByTestId('details-toggle').click();
    await alice.getByTestId('customer-details').waitFor({ state: 'visible' });
    await H.screenshot(alice, 'console-details-overlay');
    await alice.getByTestId('details-toggle').click();
    await alice.getByTestId('customer-details').waitFor({ state: 'hidden' });
    await alice.setViewportSize({ width: 1280, height: 800 });
  }));

  it('widget reload: the log opens at its end and a new message scrolls into view', step(async () => {
    cust3 = await H.newPage(browser, { name: 'cust3', viewport: { width: 1000, height: 700 } });
    await H.openWidget(cust3, hub);
    await H.widgetSend(cust3, 'Third customer, a long chat');
    const offer = bob.locator('[data-testid=offer]');
    await offer.waitFor({ timeout: 20000 });
    await offer.getByTestId('offer-accept').click();
    for (let i = 1; i <= 6; i++) await H.consoleSend(bob, `Line ${i} of a long answer:\nfirst,\nthen,\nfinally.`);
    await cust3.locator('[data-testid=sb-msg][data-role=agent]', { hasText: "Line 6 of" }).waitFor();
    const atEnd = (page) => page.getByTestId('sb-messages').evaluate((el) => el.scrollHeight > el.clientHeight && el.scrollHeight - el.scrollTop - el.clientHeight < 4);

    await cust3.reload();
    await cust3.waitForFunction(() => window.SwitchboardWidget && window.SwitchboardWidget.state().synced, null, { timeout: 15000 });
    if (!(await cust3.getByTestId('sb-panel').isVisible())) await cust3.getByTestId('sb-launcher').click();
    await cust3.locator('[data-testid=sb-msg][data-role=agent]', { hasText: "Line 6 of" }).waitFor();
    await H.until(() => atEnd(cust3), { what: 'log at its end after the reload' });

    await H.consoleSend(bob, 'One more thing after the reload');
    const last = cust3.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'One more thing' });
    await last.waitFor();
    await H.until(() => atEnd(cust3), { what: 'new message scrolled into view' });
    // Read marks survive a reload: one known from a later reply, one from the `read` frame.
    const mineMsg = (text) => cust3.locator('[data-testid=sb-msg][data-role=customer]', { hasText: text });
    assert.equal(await mineMsg('Third customer').getAttribute('data-state'), 'read');
    await H.widgetSend(cust3, 'Thanks, got it');
    await cust3.locator('[data-testid=sb-msg][data-role=customer][data-state=read]', { hasText: 'Thanks, got it' }).waitFor({ timeout: 15000 });
    await cust3.reload();
    await cust3.waitForFunction(() => window.SwitchboardWidget && window.SwitchboardWidget.state().synced, null, { timeout: 15000 });
    if (!(await cust3.getByTestId('sb-panel').isVisible())) await cust3.getByTestId('sb-launcher').click();
    await mineMsg('Thanks, got it').waitFor();
    assert.equal(await mineMsg('Thanks, got it').getAttribute('data-state'), 'read');
    assert.match(await mineMsg('Thanks, got it').innerText(), /Read/);
    assert.equal(await mineMsg('Third customer').getAttribute('data-state'), 'read');
    await cust3.close();
  }));
});
