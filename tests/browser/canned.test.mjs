// Canned responses managed over REST (issue 18): a response created while the console is
// open shows in the `/` list at once (no reload of the console or the hub), only the
// active conversation's topic and the global ones are listed, and picking one puts its
// text in the composer with the placeholders expanded.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as H from './harness.mjs';

// A customer's site embedding the widget for the billing topic, with a name and email.
function shopSite(hubUrl) {
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>Shop</title><link rel="icon" href="data:,"></head>
<body><h1>Billing help</h1><script src="${hubUrl}/widget.js" data-hub="${hubUrl}" data-topic="billing" data-name="Ann Example" data-email="ann@example.com" async></script></body></html>`;
  const server = http.createServer((req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(body); });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('canned responses from the hub', { timeout: 180000 }, () => {
  let hub, browser, agent, ann, site, sup;

  before(async () => {
    hub = await H.startHub();
    browser = await H.launchBrowser();
  });

  after(async () => {
    site?.close();
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [ann, agent, sup]);

  it('a response created over REST is found with / and expanded on insertion', step(async () => {
    await hub.api('POST', '/v1/canned', { shortcut: 'reflect', text: 'Let me think about that.' });
    const token = await hub.createAgent('alice', { name: 'Alice', skills: { billing: 3 } });
    agent = await H.newPage(browser, { name: 'alice' });
    await H.loginConsole(agent, hub, token);
    await H.setAvailable(agent);

    ann = await H.newPage(browser, { name: 'ann' });
    site = await shopSite(hub.url);
    await H.openWidget(ann, { url: `http://127.0.0.1:${site.address().port}` }, { path: '/' });
    await H.widgetSend(ann, 'I was charged twice');
    await agent.getByTestId('offer').waitFor({ timeout: 20000 });
    await agent.getByTestId('offer-accept').click();
    await agent.locator('[data-testid=msg][data-role=customer]', { hasText: 'charged twice' }).waitFor();
    await H.until(async () => (await agent.getByTestId('detail-email').innerText()) === 'ann@example.com', { what: 'customer details loaded' });

    const input = agent.getByTestId('composer-input');
    const items = agent.getByTestId('canned-item');
    const keys = async () => (await items.evaluateAll((ns) => ns.map((n) => n.dataset.key))).join(',');
    await input.fill('/ref');
    await H.until(async () => (await keys()) === 'reflect', { what: 'the one response there was' });
    await input.press('Escape');
    await input.fill('');

    // Created while the console is open; the hub is not restarted, the page not reloaded.
    await hub.api('POST', '/v1/canned', {
      shortcut: 'refund', topic: 'billing',
      text: 'Hi {customer.name}, your {topic} refund is on its way. {agent.name} {order.id}',
    });
    await hub.api('POST', '/v1/canned', { shortcut: 'referral', topic: 'general', text: 'Another topic.' });
    await input.fill('/ref');
    await H.until(async () => (await keys()) === 'reflect,refund', { what: 'the new billing response, not the general one' });
    await H.screenshot(agent, 'canned-from-hub');
    // Text matches too, case-insensitively.
    await input.fill('/WAY');
    await H.until(async () => (await keys()) === 'refund', { what: 'a search by text' });

    await input.fill('/ref');
    await H.until(async () => (await keys()) === 'reflect,refund', { what: 'the list again' });
    await agent.locator('[data-testid=canned-item][data-key=refund]').click();
    assert.equal(await input.inputValue(), 'Hi Ann Example, your billing refund is on its way. Alice {order.id}');
    await input.press('Enter');
    await ann.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'Hi Ann Example, your billing refund' }).waitFor();
  }));

  it('a supervisor manages the responses of its topics in the supervisor view', step(async () => {
    const token = await hub.createAgent('sam', { name: 'Sam', supervisor: true, skills: { billing: 1 } });
    sup = await H.newPage(browser, { name: 'sam' });
    await H.loginConsole(sup, hub, token, { hash: '#supervisor' });
    const rows = sup.getByTestId('sup-canned-row');
    const keys = async () => (await rows.evaluateAll((ns) => ns.map((n) => n.dataset.key))).join(',');
    await H.until(async () => (await keys()) === 'referral,reflect,refund', { what: 'the responses listed' });

    // Add one for billing (its topic).
    await sup.getByTestId('canned-shortcut').fill('late');
    await sup.getByTestId('canned-topic').fill('billing');
    await sup.getByTestId('canned-text').fill('Sorry for the wait, {customer.name}.');
    await sup.getByTestId('canned-save').click();
    await H.until(async () => (await keys()) === 'late,referral,reflect,refund', { what: 'the added response' });
    // A global one is the admin's: the hub's refusal is shown.
    await sup.getByTestId('canned-shortcut').fill('hello');
    await sup.getByTestId('canned-topic').fill('');
    await sup.getByTestId('canned-text').fill('Hello!');
    await sup.getByTestId('canned-save').click();
    await H.until(async () => /admin only/.test(await sup.getByTestId('canned-error').innerText()), { what: 'the 403 message' });
    await H.screenshot(sup, 'canned-panel');

    // Edit, then delete (two clicks).
    const late = sup.locator('[data-testid=sup-canned-row][data-key=late]');
    await late.getByTestId('canned-edit').click();
    await sup.getByTestId('canned-text').fill('Thanks for waiting, {customer.name}.');
    await sup.getByTestId('canned-save').click();
    await H.until(async () => /Thanks for waiting/.test(await late.innerText()), { what: 'the edited text' });
    const listed = await hub.api('GET', '/v1/canned?topic=billing');
    assert.equal(listed.canned_responses.find((r) => r.shortcut === 'late')?.text, 'Thanks for waiting, {customer.name}.');
    await late.getByTestId('canned-delete').click();
    await late.getByTestId('canned-delete').click();
    await H.until(async () => (await keys()) === 'referral,reflect,refund', { what: 'the deleted response gone' });
  }));
});
