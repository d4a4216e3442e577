// The supervisor's reports page: a real chat (answered, closed, rated on the NPS scale
// the widget shows for an NPS topic) appears in the figures, the charts and the CSV
// export; grouping by agent shows agent time.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as H from './harness.mjs';

const TOPICS = `
[[topic]]
name = "general"
default = true
survey = "nps"
sla = { wait_ms = 60000, first_response_ms = 120000 }
`;

describe('reports page', { timeout: 240000 }, () => {
  let hub, browser, sam, cust;

  before(async () => {
    hub = await H.startHub({ topics: TOPICS });
    browser = await H.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const step = H.stepper(() => hub, () => [cust, sam]);

  it('a chat rated on the NPS scale shows up in the report', step(async () => {
    const token = await hub.createAgent('sam', { name: 'Sam', supervisor: true });
    ({ agent: sam, cust } = await H.startChat(hub, browser, token, { agentName: 'sam', viewport: { width: 1100, height: 760 } }));
    await H.consoleSend(sam, 'Hello! How can I help?');
    await cust.locator('[data-testid=sb-msg][data-role=agent]', { hasText: 'How can I help' }).waitFor();
    await sam.getByTestId('close-open').click();
    await sam.getByTestId('close-submit').click();
    // The widget shows the 0-10 scale of an NPS topic.
    await cust.getByTestId('sb-rating').waitFor();
    assert.equal(await cust.getByTestId('sb-star-1').count(), 0, 'no stars for NPS');
    await cust.getByTestId('sb-nps-9').click();
    await cust.getByTestId('sb-rating-submit').click();
    await cust.getByTestId('sb-rating-thanks').waitFor();
    // The customer downloads the transcript of the closed chat.
    const [download] = await Promise.all([cust.waitForEvent('download'), cust.getByTestId('sb-transcript').click()]);
    const text = readFileSync(await download.path(), 'utf8');
    assert.match(text, /Hello! How can I help\?/);
    assert.match(download.suggestedFilename(), /^transcript-c_[0-9a-f]+\.txt$/);
  }));

  it('figures, charts and the CSV export', step(async () => {
    await sam.setViewportSize({ width: 1400, height: 1000 });
    await sam.getByTestId('reports-tab').click();
    await sam.getByTestId('reports').waitFor();
    await sam.getByTestId('rep-bucket').selectOption('hour');
    const row = sam.locator('[data-testid=rep-row][data-group=general]');
    // The rating reaches the ticket (and the report) shortly after it is stored.
    await H.until(async () => {
      await sam.getByTestId('rep-load').click();
      await row.waitFor();
      const cells = await row.locator('td').allInnerTexts();
      return cells[0] === '1' && cells[1] === '1' && /NPS 100 \(1\)/.test(cells.join('|'));
    }, { what: 'the chat and its rating in the report', timeout: 20000 });
    const cells = await row.locator('td').allInnerTexts();
    assert.match(cells.join('|'), /100\.0 %/, `SLA met: ${cells}`);
    for (const chart of ['volume', 'wait', 'first-response', 'satisfaction', 'sla']) {
      const fig = sam.getByTestId('rep-chart-' + chart);
      await fig.waitFor();
      assert.ok(Number(await fig.getAttribute('data-points')) > 0, `${chart} chart has points`);
    }
    assert.match(await sam.getByTestId('rep-chart-satisfaction').innerText(), /NPS/);
    await H.screenshot(sam, 'console-reports');

    const [download] = await Promise.all([sam.waitForEvent('download'), sam.getByTestId('rep-export').click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    const lines = csv.trim().split(/\r\n/);
    assert.match(lines[0], /^row,bucket_start,bucket_end,group,started,answered/);
    const total = lines.find((l) => l.startsWith('total,') && l.includes(',general,'));
    assert.ok(total, csv);
    assert.match(total, /,general,1,1,/);

    await sam.getByTestId('rep-by').selectOption('agent');
    const agentRow = sam.locator('[data-testid=rep-row][data-group=sam]');
    await agentRow.waitFor({ timeout: 10000 });
    const agentCells = await agentRow.locator('td').allInnerTexts();
    assert.equal(agentCells[5], '1', `sam handled the chat: ${agentCells}`);
  }));
});
