// Transfer to a second agent page, with a note for the next agent; internal notes stay
// with the agents, the customer sees a transfer notice and the new agent's name.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('transfer between two agent pages', { timeout: 240000 }, () => {
  let hub, browser, alice, bob, cust, convId, bobToken;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
    const aliceToken = await hub.createAgent('alice', { name: 'Alice' });
    bobToken = await hub.createAgent('bob', { name: 'Bob' });
    ({ agent: alice, cust, convId } = await H.startChat(hub, browser, aliceToken, { first: 'I want a refund', agentName: 'alice' }));
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, alice, bob]);

  it('an internal note is visibly distinct and never reaches the customer', step(async () => {
    await alice.getByTestId('note-toggle').click();
    assert.equal(await alice.getByTestId('note-toggle').getAttribute('aria-pressed'), 'true');
    await H.consoleSend(alice, 'VIP customer, order over 500');
    const note = alice.locator('[data-testid=note][data-seq]', { hasText: 'VIP customer' });
    await note.waitFor();
    assert.match(await note.innerText(), /Internal note/i);
    await alice.getByTestId('note-toggle').click();
    await H.consoleSend(alice, 'Let me get a colleague for the refund.');
    await cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'colleague' }).waitFor();
    assert.equal(await cust.getByText('VIP customer').count(), 0);
    assert.ok(!(await H.widgetState(cust)).messages.some((m) => /VIP/.test(m.text)));
  }));

  it('transfer to bob: offer with the note, bob accepts, the customer sees bob', step(async () => {
    bob = await H.newPage(browser, { name: 'bob' });
    await H.loginConsole(bob, hub, bobToken);
    await H.setAvailable(bob);

    await alice.getByTestId('transfer-open').click();
    await alice.getByTestId('transfer-kind-agent').check();
    // Every agent picks from the others (name, status, load), not a typed id.
    const bobOption = alice.locator('[data-testid=transfer-agent] option[value=bob]');
    await bobOption.waitFor({ state: 'attached' });
    assert.match(await bobOption.innerText(), /available/);
    await alice.getByTestId('transfer-agent').selectOption('bob');
    await alice.getByTestId('transfer-note').fill('wants a refund over 500');
    await alice.getByTestId('transfer-submit').click();
    await alice.getByTestId('transfer-dialog').waitFor({ state: 'hidden' });
    await H.until(async () => /Transfer to agent bob/.test(await alice.getByTestId('conv-banner').innerText()), { what: 'pending transfer banner' });

    const offer = bob.getByTestId('offer');
    await offer.waitFor({ timeout: 20000 });
    assert.equal(await offer.getAttribute('data-conversation-id'), convId);
    assert.match(await bob.getByTestId('offer-transfer').innerText(), /alice.*wants a refund over 500/);
    await H.screenshot(bob, 'console-transfer-offer');
    await bob.getByTestId('offer-accept').click();

    // Bob gets the full history, the note included.
    await bob.locator('[data-testid=msg][data-role=customer]', { hasText: 'I want a refund' }).waitFor();
    await bob.getByTestId('note').filter({ hasText: 'VIP customer' }).waitFor();
    await bob.getByTestId('sys').filter({ hasText: 'wants a refund over 500' }).waitFor();

    // The customer: a transfer notice, then Bob in the header.
    await cust.getByTestId('sb-system').filter({ hasText: 'Transferring you' }).waitFor();
    await cust.getByTestId('sb-system').filter({ hasText: 'Bob joined' }).waitFor();
    await H.until(async () => (await cust.getByTestId('sb-agent').innerText()) === 'Bob', { what: 'Bob in the widget header' });
    assert.equal(await cust.getByText('wants a refund over 500').count(), 0, 'the transfer note stays internal');

    // Alice handed it over.
    await H.until(async () => /Handed over to Bob/.test(await alice.getByTestId('conv-banner').innerText()), { what: 'alice sees the hand-off' });
    await alice.getByTestId('sys').filter({ hasText: 'Alice left' }).waitFor();

    await H.consoleSend(bob, 'Hi, Bob here. Refund on its way.');
    await cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Bob here' }).waitFor();
    await H.widgetSend(cust, 'Great, thanks Bob');
    await bob.locator('[data-testid=msg][data-role=customer]', { hasText: 'thanks Bob' }).waitFor();
    await H.screenshot(bob, 'console-after-transfer');
    await H.screenshot(cust, 'widget-after-transfer');
  }));

  it('a transfer to a queue nobody takes fails and the agent keeps the conversation', step(async () => {
    await bob.getByTestId('transfer-open').click();
    await bob.getByTestId('transfer-kind-topic').check();
    await bob.getByTestId('transfer-target').fill('billing');
    await bob.getByTestId('transfer-submit').click();
    await bob.getByTestId('transfer-dialog').waitFor({ state: 'hidden' });
    await bob.getByTestId('sys').filter({ hasText: 'topic billing' }).waitFor();
    await cust.getByTestId('sb-system').filter({ hasText: 'billing team' }).waitFor();
    // Nobody has the billing skill: after the topic's transfer timeout Bob keeps it.
    await H.until(async () => /Transfer failed/.test(await bob.getByTestId('conv-banner').innerText()), { timeout: 20000, what: 'transfer_failed banner' });
    await H.consoleSend(bob, 'Still with me, Bob.');
    await cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Still with me' }).waitFor();
    assert.equal(await cust.getByTestId('sb-agent').innerText(), 'Bob');
  }));
});
