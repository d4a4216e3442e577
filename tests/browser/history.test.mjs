// Customer history (issue 18): a plain agent (not a supervisor) sees, in the customer
// panel, the page and referrer of the chat and a returning visitor's earlier
// conversation, newest first, and opens its transcript in place.

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

  it('the visitor returns: the agent sees the earlier chat and opens its transcript', step(async () => {
    await cust.getByTestId('sb-new-chat').first().click();
    await H.widgetSend(cust, 'Hello again, about my parcel');
    const offer = agent.getByTestId('offer');
    await offer.waitFor({ timeout: 20000 });
    const second = await offer.getAttribute('data-conversation-id');
    assert.notEqual(second, firstConv);
    await agent.getByTestId('offer-accept').click();
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: 'Hello again' }).waitFor();

    const past = agent.getByTestId('past-conversation');
    await past.first().waitFor();
    assert.equal(await past.count(), 1, 'the earlier chat only (not the current one)');
    assert.match(await past.first().innerText(), /general/);
    assert.match(await past.first().innerText(), /My parcel A-17/);
    await past.first().getByRole('button').click();
    const transcript = agent.getByTestId('past-transcript');
    await transcript.filter({ hasText: 'never arrived' }).waitFor();
    assert.match(await transcript.innerText(), /A new one is on its way/);
    assert.match(await agent.getByTestId('detail-referrer').innerText(), /.+/);
    await H.screenshot(agent, 'console-history');
  }));
});
