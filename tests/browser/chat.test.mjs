// The main flow: a customer writes in the widget, an agent in a second page gets the offer,
// accepts and replies; typing and read state both ways; text is rendered as text; a reload
// mid-chat shows the conversation once; close, rating and the ticket.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('chat between the widget and the console', { timeout: 240000 }, () => {
  let hub, browser, agent, cust, convId;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, agent]);

  it('customer writes, the agent gets the offer, accepts and replies', step(async () => {
    const token = await hub.createAgent('alice', { name: 'Alice' });
    agent = await H.newPage(browser, { name: 'alice' });
    await H.loginConsole(agent, hub, token);
    await H.setAvailable(agent);

    cust = await H.newPage(browser, { name: 'customer', viewport: { width: 1100, height: 760 } });
    await H.openWidget(cust, hub);
    assert.equal((await H.widgetState(cust)).online, true);
    await H.widgetSend(cust, 'Hi, my order #1042 is late');
    await cust.locator('[data-testid=sb-msg][data-role=customer]', { hasText: 'order #1042' }).waitFor();

    // The agent is offered the conversation with a preview and a countdown.
    const offer = agent.getByTestId('offer');
    await offer.waitFor({ timeout: 20000 });
    assert.match(await offer.innerText(), /order #1042/);
    assert.match(await agent.getByTestId('offer-countdown').innerText(), /\d+ s/);
    await H.screenshot(agent, 'console-offer');
    convId = await offer.getAttribute('data-conversation-id');
    await agent.getByTestId('offer-accept').click();
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: 'order #1042' }).waitFor();
    await agent.getByTestId('offer').waitFor({ state: 'detached' });

    // The customer sees who joined.
    await cust.getByTestId('sb-system').filter({ hasText: 'Alice joined' }).waitFor();
    await H.until(async () => (await cust.getByTestId('sb-agent').innerText()) === 'Alice', { what: 'agent name in the widget header' });

    await H.consoleSend(agent, 'Hello! Let me look at order #1042.');
    await cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Let me look' }).waitFor();
    // The customer's panel is open, so the agent's message is read; the agent sees it.
    await agent.locator('[data-testid=msg][data-role=agent][data-state=read]', { hasText: 'Let me look' }).waitFor();
    // ...and the agent has the customer's message open, so the customer sees "Read".
    await cust.locator('[data-testid=sb-msg][data-role=customer][data-state=read]', { hasText: 'order #1042' }).waitFor();
  }));

  it('typing shows both ways', step(async () => {
    await cust.getByTestId('sb-input').fill('I ordered on Mon');
    await H.until(async () => /is typing/.test(await agent.getByTestId('typing').innerText()), { what: 'customer typing in the console' });
    await cust.getByTestId('sb-input').fill('');
    await agent.getByTestId('composer-input').fill('Checking the courier');
    await H.until(async () => /Alice is typing/.test(await cust.getByTestId('sb-typing').innerText()), { what: 'agent typing in the widget' });
    await agent.getByTestId('composer-input').press('Enter');
    await cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Checking the courier' }).waitFor();
    // A message from the agent ends its typing indicator.
    await H.until(async () => !/is typing/.test(await cust.getByTestId('sb-typing').innerText()), { what: 'typing indicator off' });
    await H.screenshot(cust, 'widget-chat');
    await H.screenshot(agent, 'console-chat');
  }));

  it('renders text as text, never as HTML', step(async () => {
    const evil = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
    await H.widgetSend(cust, evil);
    const bubble = agent.locator('[data-testid=msg][data-role=customer]', { hasText: '<b>bold</b>' });
    await bubble.waitFor();
    assert.equal(await bubble.locator('img, b').count(), 0);
    await H.consoleSend(agent, '<script>window.__pwned=1</script><i>hi</i>');
    const back = cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: '<i>hi</i>' });
    await back.waitFor();
    assert.equal(await back.locator('i, script').count(), 0);
    assert.equal(await cust.evaluate(() => window.__pwned), undefined);
    assert.equal(await agent.evaluate(() => window.__pwned), undefined);
  }));

  it('unread count on the launcher while the panel is closed', step(async () => {
    await cust.getByTestId('sb-close').click();
    await cust.getByTestId('sb-panel').waitFor({ state: 'hidden' });
    await H.consoleSend(agent, 'Found it: the parcel is at the depot.');
    await H.until(async () => (await cust.getByTestId('sb-unread').innerText()) === '1', { what: 'unread badge 1' });
    assert.match(await cust.getByTestId('sb-launcher').getAttribute('aria-label'), /1 unread/);
    await H.screenshot(cust, 'widget-unread');
    await cust.getByTestId('sb-launcher').click();
    await H.until(async () => (await H.widgetState(cust)).unread === 0, { what: 'unread cleared on open' });
    assert.equal(await cust.getByTestId('sb-unread').isHidden(), true);
  }));

  it('a reload mid-chat shows the whole conversation once', step(async () => {
    const before = (await H.widgetState(cust)).messages.map((m) => m.text);
    assert.ok(before.length >= 6, 'conversation has messages');
    const visitor = (await H.widgetState(cust)).visitorId;
    await cust.reload();
    await cust.waitForFunction(() => window.SwitchboardWidget?.state().synced, null, { timeout: 15000 });
    const st = await H.widgetState(cust);
    assert.equal(st.visitorId, visitor, 'same visitor after reload');
    assert.equal(st.conversationId, convId);
    await cust.getByTestId('sb-launcher').click();
    await cust.getByTestId('sb-panel').waitFor();
    const texts = await cust.getByTestId('sb-msg').locator('.b').allInnerTexts();
    assert.deepEqual(texts, before, 'every message once, in order');
    assert.equal(st.unread, 0, 'already read messages are not unread again');
    // The chat goes on after the reload.
    await H.widgetSend(cust, 'Thanks, after the reload');
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: 'after the reload' }).waitFor();
    assert.equal(await agent.locator('[data-testid=msg]', { hasText: 'after the reload' }).count(), 1);
  }));

  it('close with resolution and tags, then the customer rates', step(async () => {
    await agent.getByTestId('close-open').click();
    await agent.getByTestId('close-resolution').selectOption('resolved');
    await agent.getByTestId('close-tags').fill('shipping, late');
    await agent.getByTestId('close-submit').click();
    await agent.getByTestId('sys').filter({ hasText: 'Closed' }).waitFor();
    await cust.getByTestId('sb-system').filter({ hasText: 'Chat ended' }).waitFor();
    await cust.getByTestId('sb-rating').waitFor();
    await H.screenshot(cust, 'widget-rating');
    await cust.getByTestId('sb-star-4').click();
    await cust.getByTestId('sb-rating-comment').fill('quick and friendly');
    await cust.getByTestId('sb-rating-submit').click();
    await cust.getByTestId('sb-rating-thanks').waitFor();
    await agent.getByTestId('sys').filter({ hasText: 'rated 4/5' }).waitFor();

    const events = await H.storedEvents(hub, convId);
    const closed = events.find((e) => e.kind === 'closed');
    assert.equal(closed.resolution, 'resolved');
    const ticket = await H.until(async () => {
      const t = await hub.api('GET', '/v1/tickets/' + closed.ticket_id);
      return t && t.rating ? t : null;
    }, { what: 'ticket with rating' });
    assert.deepEqual(ticket.tags, ['shipping', 'late']);
    assert.equal(ticket.rating.score ?? ticket.rating, 4);
  }));
});
