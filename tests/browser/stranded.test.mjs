// Nobody waits forever, in the browser: an agent takes a waiting chat from the console's
// queue, and a customer who waited long is offered the offline form beside the queue.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const TOPICS = `
[[topic]]
name = "general"
default = true
leave_message_after_s = 2
`;

describe('nobody stranded', { timeout: 240000 }, () => {
  let hub, browser, alice, cust, cust2;

  before(async () => {
    hub = await H.startHub({ topics: TOPICS });
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, cust2, alice]);

  it('an agent takes a waiting chat from the queue', step(async () => {
    const token = await hub.createAgent('alice', { name: 'Alice', capacity: 1 });
    alice = await H.newPage(browser, { name: 'alice' });
    await H.loginConsole(alice, hub, token);
    await H.setAvailable(alice);
    cust = await H.newPage(browser, { name: 'customer' });
    await H.openWidget(cust, hub);
    await alice.getByTestId('status-away').click();
    await alice.waitForFunction(() => window.SwitchboardConsole.state().status === 'away');
    await H.widgetSend(cust, 'Can someone help me?');
    const item = alice.getByTestId('queue-item');
    await item.waitFor({ timeout: 15000 });
    assert.match(await item.innerText(), /Can someone help me\?/);
    await item.getByTestId('queue-take').click();
    await alice.locator('[data-testid=msg][data-role=customer]', { hasText: 'Can someone help me?' }).waitFor({ timeout: 15000 });
    await cust.getByTestId('sb-system').filter({ hasText: 'joined' }).waitFor();
    await H.until(async () => (await alice.getByTestId('queue-item').count()) === 0, { what: 'queue emptied' });
  }));

  it('a long wait offers the offline form, and leaving a message ends the wait', step(async () => {
    // Alice is available but full (her one slot holds the chat she took): the desk is
    // online, and the next customer waits.
    await H.setAvailable(alice);
    cust2 = await H.newPage(browser, { name: 'customer2' });
    await H.openWidget(cust2, hub);
    await H.widgetSend(cust2, 'Still there?');
    const form = cust2.getByTestId('sb-offline-form');
    await form.waitFor({ timeout: 15000 });
    assert.match(await form.innerText(), /Sorry for the wait/);
    assert.equal(await cust2.getByTestId('sb-input').isVisible(), true, 'the customer may keep waiting and writing');
    await cust2.getByTestId('sb-offline-email').fill('ann@example.com');
    await cust2.getByTestId('sb-offline-text').fill('Please call me back');
    await cust2.getByTestId('sb-offline-submit').click();
    await cust2.getByTestId('sb-ticket').waitFor({ timeout: 15000 });
    await H.screenshot(cust2, 'widget-leave-message');
  }));
});

describe('the widget follows the desk', { timeout: 120000 }, () => {
  let hub, browser, agent, cust;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, agent]);

  it('goes online without a reload when an agent becomes available', step(async () => {
    cust = await H.newPage(browser, { name: 'customer' });
    await H.openWidget(cust, hub);
    await cust.getByTestId('sb-offline-form').waitFor();
    const token = await hub.createAgent('dora', { name: 'Dora' });
    agent = await H.newPage(browser, { name: 'dora' });
    await H.loginConsole(agent, hub, token);
    await H.setAvailable(agent);
    // The widget asks every 10 s while nobody serves it.
    await cust.getByTestId('sb-input').waitFor({ state: 'visible', timeout: 25000 });
    assert.equal(await cust.getByTestId('sb-offline-form').count(), 0);
    assert.equal((await H.widgetState(cust)).online, true);
  }));
});
