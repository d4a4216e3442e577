// Customer history (issue 18): a plain agent (not a supervisor) sees, in the customer
// panel, the page and referrer of the chat and a returning visitor's earlier
// conversations, newest first, a page at a time ("More"), and opens a transcript in place.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('customer history in the console', { timeout: 240000 }, () => {
  let hub, browser, agent, cust, firstConv;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, agent]);

  it('a first chat is closed and becomes a ticket', step(async () => {
    const token = await hub.createAgent('alice', { name: 'Alice' });
    ({ agent, cust, convId: firstConv } = await H.startChat(hub, browser, token, { first: 'My parcel A-17 never arrived', agentName: 'alice' }));
    // A first-time visitor: the panel says so, and shows where the chat started.
    await agent.getByTestId('no-past-conversations').waitFor();
    assert.match(await agent.getByTestId('detail-page').innerText(), /\/demo/);
    await H.consoleSend(agent, 'Sorry! A new one is on its way.');
    await agent.getByTestId('close-open').click();
    await agent.getByTestId('close-submit').click();
    await cust.getByTestId('sb-system').filter({ hasText: 'Chat ended' }).waitFor();
    const visitor = (await H.widgetState(cust)).visitorId;
    assert.ok(visitor, 'the widget knows its visitor id');
    await H.until(async () => {
      const page = await hub.api('GET', '/v1/tickets?order=newest&visitor=' + encodeURIComponent(visitor));
      return page?.tickets?.some((t) => t.conversation_id === firstConv);
    }, { what: 'the first ticket in the visitor index' });
  }));

  it('the visitor leaves five offline messages (more than a page of history)', step(async () => {
    const sent = await cust.evaluate(() => {
      const socket = window.__sockets.find((s) => s.readyState === 1);
      for (let i = 1; i <= 5; i++) socket?.send(JSON.stringify({ type: 'offline_message', email: 'ann@example.com', text: 'Offline question ' + i }));
      return Boolean(socket);
    });
    assert.ok(sent, 'the widget has an open socket');
    const visitor = (await H.widgetState(cust)).visitorId;
    await H.until(async () => {
      const page = await hub.api('GET', '/v1/tickets?limit=10&visitor=' + encodeURIComponent(visitor));
      return page?.tickets?.length === 6;
    }, { what: 'six tickets of the visitor' });
  }));

  it('the visitor returns: the agent sees the earlier chat and opens its transcript', step(async () => {
    await cust.getByTestId('sb-new-chat').first().click();
    await H.widgetSend(cust, 'Hello again, about my parcel');
    const offer = agent.getByTestId('offer');
    await offer.waitFor({ timeout: 20000 });
    const second = await offer.getAttribute('data-conversation-id');
    assert.notEqual(second, firstConv);
    await agent.getByTestId('offer-accept').click();
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: 'Hello again' }).waitFor();

    // Newest first, a page of five: the offline messages; the chat comes with "More".
    const past = agent.getByTestId('past-conversation');
    await past.first().waitFor();
    assert.equal(await past.count(), 5);
    assert.match(await past.first().innerText(), /Offline question 5/);
    assert.match(await past.nth(4).innerText(), /Offline question 1/);
    await agent.getByTestId('history-more').click();
    await past.nth(5).waitFor();
    assert.equal(await past.count(), 6, 'the earlier chat too (not the current one)');
    await H.until(async () => (await agent.getByTestId('history-more').count()) === 0, { what: 'no more pages' });
    const chat = past.nth(5);
    assert.match(await chat.innerText(), /general/);
    assert.match(await chat.innerText(), /My parcel A-17/);
    await chat.getByRole('button').click();
    const transcript = agent.getByTestId('past-transcript');
    await transcript.filter({ hasText: 'never arrived' }).waitFor();
    assert.match(await transcript.innerText(), /A new one is on its way/);
    assert.match(await agent.getByTestId('detail-referrer').innerText(), /.+/);
    await H.screenshot(agent, 'console-history');
  }));
});
