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
  let hub, browser, alice, bob, cust, cust2, convId, aliceToken, bobToken;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
    aliceToken = await hub.createAgent('alice', { name: 'Alice' });
    bobToken = await hub.createAgent('bob', { name: 'Bob' });
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [alice, bob, cust, cust2]);

  it('an offer beeps and notifies while the tab is hidden; the setting turns both off', step(async () => {
    alice = await H.newPage(browser, { name: 'alice' });
    await alice.context().addInitScript(STUB_ALERTS);
    await H.loginConsole(alice, hub, aliceToken);
    await H.setAvailable(alice); // the first click after sign-in asks for permission
    assert.equal((await alerts(alice)).asked, 1);
    await alice.evaluate(HIDE);

    cust = await H.newPage(browser, { name: 'cust' });
    await H.openWidget(cust, hub);
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
  }));

  it('transfer: the customer reads names, the previous owner sees the hand-off', step(async () => {
    bob = await H.newPage(browser, { name: 'bob' });
    await H.loginConsole(bob, hub, bobToken);
    await H.setAvailable(bob);
    await alice.locator(`[data-testid=tab][data-conversation-id="${convId}"]`).click();
    await alice.getByTestId('transfer-open').click();
    await alice.getByTestId('transfer-kind-agent').check();
    await alice.getByTestId('transfer-target').fill('bob');
    await alice.getByTestId('transfer-submit').click();
    // (Bob may first be offered the second customer's chat, still queued.)
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
  }));
});
