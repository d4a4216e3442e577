// The supervisor view: queues per topic with the waiting count, agents with status and load,
// live conversations with a monitor button that opens the conversation read-only.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('supervisor view', { timeout: 240000 }, () => {
  let hub, browser, sup, alice, cust;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, alice, sup]);

  it('shows the queue, the agents and a monitor button', step(async () => {
    const aliceToken = await hub.createAgent('alice', { name: 'Alice' });
    const supToken = await hub.createAgent('sam', { name: 'Sam', supervisor: true });

    // Alice is available while the customer loads the page (so the widget chats), then
    // steps away: the conversation waits in the queue.
    alice = await H.newPage(browser, { name: 'alice' });
    await H.loginConsole(alice, hub, aliceToken);
    await H.setAvailable(alice);
    cust = await H.newPage(browser, { name: 'customer' });
    await H.openWidget(cust, hub);
    assert.equal((await H.widgetState(cust)).online, true);
    await alice.getByTestId('status-away').click();
    await alice.waitForFunction(() => window.SwitchboardConsole.state().status === 'away');
    await H.widgetSend(cust, 'Is anybody there?');
    await H.until(async () => (await H.widgetState(cust)).conversationState === 'queued', { what: 'conversation queued' });
    await cust.getByTestId('sb-queue').waitFor();
    assert.match(await cust.getByTestId('sb-queue').innerText(), /#1 in line|Waiting/);

    sup = await H.newPage(browser, { name: 'sam', viewport: { width: 1400, height: 860 } });
    await H.loginConsole(sup, hub, supToken, { hash: '#supervisor' });
    await sup.getByTestId('supervisor-tab').waitFor();
    await sup.getByTestId('supervisor').waitFor();
    const row = sup.locator('[data-testid=sup-queue][data-topic=general]');
    await H.until(async () => (await row.count()) && (await row.getByTestId('sup-waiting').innerText()) === '1', { what: 'general queue shows 1 waiting' });
    await sup.locator('[data-testid=sup-agent][data-agent-id=alice]').waitFor();
    assert.match(await sup.locator('[data-testid=sup-agent][data-agent-id=alice]').innerText(), /away/);
    const conv = sup.locator('[data-testid=sup-conv][data-state=queued]');
    await conv.waitFor();
    const convId = await conv.getAttribute('data-conversation-id');
    assert.equal(convId, (await H.widgetState(cust)).conversationId);
    // The nodes of the deployment: this one hub, which routes.
    const node = sup.getByTestId('sup-node');
    await node.first().waitFor();
    assert.equal(await node.count(), 1);
    assert.match(await node.first().getByTestId('sup-node-routing').innerText(), /yes/);
    await H.screenshot(sup, 'console-supervisor');

    // Monitor: the supervisor sees the conversation without joining it.
    await conv.getByTestId('sup-monitor').click();
    await sup.locator('[data-testid=msg][data-role=customer]', { hasText: 'Is anybody there?' }).waitFor();
    // Alice takes it; the supervisor watches live.
    await H.setAvailable(alice);
    await alice.getByTestId('offer').waitFor({ timeout: 20000 });
    await alice.getByTestId('offer-accept').click();
    await H.consoleSend(alice, 'Yes! Sorry for the wait.');
    await sup.locator('[data-testid=msg][data-role=agent]', { hasText: 'Sorry for the wait' }).waitFor();
    await cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Sorry for the wait' }).waitFor();
    assert.equal(await sup.getByTestId('note-toggle').isDisabled(), true, 'a monitoring supervisor writes notes only');
    await H.screenshot(sup, 'console-monitor');
  }));
});
