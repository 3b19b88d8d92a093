// Loads Rewind's UI in headless Chromium (Debian's, through playwright-core), drags a box over the
// XLog scatter, opens a transaction of the list, looks a trace up, and reports what a person would
// see, plus whether any stored value ran as markup or script.
// Used by tests/it/ui.rs. Usage: node ui_check.js QUERY_URL TRACE_ID SCREENSHOT.png
'use strict';

const { chromium } = require('playwright-core');

const [base, traceId, screenshot] = process.argv.slice(2);

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(base + '/');
    await page.waitForSelector('#services tbody tr');
    const services = await page.$$eval('#services tbody tr', (rows) => rows.map((r) => r.children[0].textContent));
    await page.waitForFunction(() => Number(document.getElementById('xlog').dataset.points) >= 0);
    const points = Number(await page.getAttribute('#xlog', 'data-points'));
    const box = await page.locator('#xlog').boundingBox();
    await page.mouse.move(box.x + 1, box.y + 1);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width - 1, box.y + box.height - 1, { steps: 5 });
    await page.mouse.up();
    await page.waitForSelector('#txlist tbody tr');
    const transactions = await page.$$eval('#txlist tbody tr', (rows) => rows.map((r) => Array.from(r.children).map((c) => c.textContent)));
    await page.click('#txlist tbody tr');
    await page.waitForSelector('#spans tbody tr');
    const openedFromList = await page.inputValue('#tid');
    await page.evaluate(() => document.querySelector('#spans tbody').replaceChildren());
    await page.fill('#tid', traceId);
    await page.click('#lookup button');
    await page.waitForSelector('#spans tbody tr');
    const spans = await page.$$eval('#spans tbody tr', (rows) => rows.map((r) => Array.from(r.children).map((c) => c.textContent)));
    await page.fill('#tid', 'not-a-trace-id');
    await page.click('#lookup button');
    await page.waitForFunction(() => document.getElementById('msg').textContent.length > 0);
    const badIdMessage = await page.textContent('#msg');
    const injected = await page.evaluate(() => ({
      xss: window.__xss === undefined ? null : window.__xss,
      images: document.querySelectorAll('img').length,
      scripts: document.querySelectorAll('tbody script').length,
    }));
    await page.fill('#tid', traceId);
    await page.click('#lookup button');
    await page.waitForSelector('#spans tbody tr');
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    process.stdout.write(JSON.stringify({ services, points, transactions, openedFromList, spans, badIdMessage, injected, errors }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
