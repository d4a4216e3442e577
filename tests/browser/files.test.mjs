// Files and images (issue 18) in the real widget and console: a screenshot shows inline on
// both sides, a PDF is a download link, a refused file says why; "End chat" asks first; and
// what a customer leaves while nobody is available reaches the console's Messages view.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync, crc32 } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import * as H from './harness.mjs';

// A real PNG (a 160×90 gradient), so the browser has something to draw.
function png(width = 160, height = 90) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'ascii'), data])), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; header[9] = 2; // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) {
      row[1 + x * 3] = 79 + Math.round((x / width) * 120);
      row[2 + x * 3] = 70 + Math.round((y / height) * 120);
      row[3 + x * 3] = 229;
    }
    rows.push(row);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

const PDF = Buffer.from('%PDF-1.4\n%\u00e2\u00e3\u00cf\u00d3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n', 'latin1');

async function loaded(img) {
  await img.waitFor();
  await H.until(() => img.evaluate((n) => n.complete && n.naturalWidth > 0), { what: 'the image drawn' });
}

describe('files, the end-chat question and the offline messages', { timeout: 240000 }, () => {
  let hub, browser, agent, cust, visitor, token;

  before(async () => {
    hub = await H.startHub({ extraConfig: '[attachments]\nmax_bytes = 200000\n' });
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, agent, visitor]);

  it('a customer leaves a message while nobody is available', step(async () => {
    visitor = await H.newPage(browser, { name: 'visitor', viewport: { width: 1000, height: 760 } });
    await H.openWidget(visitor, hub);
    await visitor.getByTestId('sb-offline-form').waitFor();
    await visitor.getByTestId('sb-offline-name').fill('Nina Perez');
    await visitor.getByTestId('sb-offline-email').fill('nina@example.com');
    await visitor.getByTestId('sb-offline-text').fill('Can you call me back about my invoice?');
    await visitor.getByTestId('sb-offline-submit').click();
    await visitor.getByTestId('sb-ticket').waitFor();
  }));

  it('a customer sends a screenshot: inline in the widget and in the console', step(async () => {
    token = await hub.createAgent('alice', { name: 'Alice' });
    ({ agent, cust } = await H.startChat(hub, browser, token, { first: 'The checkout page breaks' }));
    await cust.getByTestId('sb-attach').waitFor();
    await cust.getByTestId('sb-file').setInputFiles({ name: 'checkout.png', mimeType: 'image/png', buffer: png() });
    await loaded(cust.locator('[data-testid=sb-msg][data-role=customer] [data-testid=sb-attachment-image]'));
    const seen = agent.locator('[data-testid=msg][data-role=customer] [data-testid=attachment-image]');
    await loaded(seen);
    assert.equal(await seen.getAttribute('alt'), 'checkout.png');
    const state = await H.widgetState(cust);
    const sent = state.messages.find((m) => m.attachment);
    assert.equal(sent.attachment.name, 'checkout.png');
    assert.equal(sent.attachment.type, 'image/png');
    await H.screenshot(cust, 'widget-image');
    await H.screenshot(agent, 'console-image');
  }));

  it('the agent answers with a PDF: a download link in the widget', step(async () => {
    await agent.getByTestId('composer-file').setInputFiles({ name: 'invoice-1042.pdf', mimeType: 'application/pdf', buffer: PDF });
    const link = cust.locator('[data-testid=sb-msg][data-role=agent] [data-testid=sb-attachment-link]');
    await link.waitFor();
    assert.match(await link.innerText(), /invoice-1042\.pdf/);
    const [download] = await Promise.all([cust.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), 'invoice-1042.pdf');
    const chunks = [];
    for await (const c of await download.createReadStream()) chunks.push(c);
    assert.deepEqual(Buffer.concat(chunks), PDF);
  }));

  it('a file too large, or of a kind not accepted, is refused with a clear word', step(async () => {
    const before = (await H.widgetState(cust)).messages.length;
    await cust.getByTestId('sb-file').setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: Buffer.concat([png(), randomBytes(250000)]) });
    await H.until(async () => /too large/.test(await cust.getByTestId('sb-upload').innerText()), { what: 'the too-large notice' });
    await cust.getByTestId('sb-file').setInputFiles({ name: 'page.txt', mimeType: 'text/plain', buffer: PDF });
    await H.until(async () => /cannot be sent/.test(await cust.getByTestId('sb-upload').innerText()), { what: 'the wrong-kind notice' });
    assert.equal((await H.widgetState(cust)).messages.length, before, 'a refused file became a message');
  }));

  it('"End chat" asks first; "Keep chatting" keeps it', step(async () => {
    await cust.getByTestId('sb-end').click();
    await cust.getByTestId('sb-end-card').waitFor();
    await cust.getByTestId('sb-end-cancel').click();
    await cust.getByTestId('sb-end-card').waitFor({ state: 'detached' });
    assert.notEqual((await H.widgetState(cust)).conversationState, 'closed');
    await cust.getByTestId('sb-end').click();
    await cust.getByTestId('sb-end-confirm').click();
    await H.until(async () => (await H.widgetState(cust)).conversationState === 'closed', { what: 'the chat ended' });
  }));

  it('the offline message waits in the console until handled', step(async () => {
    await H.until(async () => (await agent.getByTestId('messages-count').innerText()) === '1', { what: 'one open offline message', timeout: 40000 });
    await agent.getByTestId('messages-tab').click();
    const item = agent.getByTestId('message');
    await item.waitFor();
    assert.match(await item.innerText(), /Nina Perez/);
    assert.equal(await agent.getByTestId('message-text').innerText(), 'Can you call me back about my invoice?');
    assert.match(await agent.getByTestId('message-reply').getAttribute('href'), /^mailto:nina%40example\.com\?subject=/);
    await H.screenshot(agent, 'console-offline-messages');
    await agent.getByTestId('message-handled').click();
    await agent.getByTestId('messages-empty').waitFor();
    await H.until(async () => (await agent.getByTestId('messages-count').innerText()) === '', { what: 'no open message left' });
    await agent.getByTestId('messages-done').click();
    await agent.getByTestId('message-handled-by').waitFor();
    assert.match(await agent.getByTestId('message-handled-by').innerText(), /alice/);
  }));
});
