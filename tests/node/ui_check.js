// Loads Rewind's UI in headless Chromium (Debian's, through playwright-core) over a store whose
// service and span names are markup, walks the map, the XLog, a trace and the SQL console, and
// reports what a person would see, plus whether any stored value ran as markup or script.
// Used by tests/it/ui.rs. Usage: node ui_check.js QUERY_URL TRACE_ID SCREENSHOT.png
'use strict';

const { report } = require('./browser');

const [base, traceId, screenshot] = process.argv.slice(2);

report(async (browser) => {
  const errors = [];
  let expectHttpErrors = false;
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(expectHttpErrors && /Failed to load resource/.test(m.text()))) errors.push(m.text());
  });
  await page.goto(base + '/');
  await page.waitForSelector('#map svg .node');
  const nodes = await page.$$eval('#map .node', (ns) => ns.map((n) => n.dataset.name));
  await page.waitForFunction(() => Number(document.getElementById('xlog').dataset.points) >= 0);
  const points = Number(await page.getAttribute('#xlog', 'data-points'));
  const box = await page.locator('.xlog-over').boundingBox();
  await page.mouse.move(box.x + 1, box.y + 1);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width - 1, box.y + box.height - 1, { steps: 5 });
  await page.mouse.up();
  await page.waitForSelector('#txlist tbody tr');
  const transactions = await page.$$eval('#txlist tbody tr', (rows) => rows.map((r) => Array.from(r.children).map((c) => c.textContent)));
  await page.click('#txlist tbody tr');
  await page.waitForSelector('#calltree tbody tr');
  const openedFromList = await page.inputValue('#tid');
  await page.goto(`${base}/#/trace?id=${traceId}`);
  await page.waitForFunction((id) => document.querySelector('#tid') && document.querySelector('#tid').value === id && document.querySelector('#calltree tbody tr'), traceId);
  const callRows = await page.$$eval('#calltree tbody tr', (rows) => rows.map((r) => r.children[0].textContent));
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  expectHttpErrors = true;
  await page.fill('#tid', 'not-a-trace-id');
  await page.click('#lookup button');
  await page.waitForFunction(() => document.getElementById('msg').textContent.length > 0);
  const badIdMessage = await page.textContent('#msg');
  expectHttpErrors = false;
  await page.goto(`${base}/#/sql?q=${encodeURIComponent('SELECT DISTINCT service FROM spans ORDER BY service')}`);
  await page.waitForSelector('#sql-result tbody tr');
  const sqlServices = await page.$$eval('#sql-result tbody tr', (rows) => rows.map((r) => r.children[0].textContent));
  const injected = await page.evaluate(() => ({
    xss: window.__xss === undefined ? null : window.__xss,
    images: document.querySelectorAll('img').length,
    scripts: document.querySelectorAll('script').length - 1,
  }));
  return { nodes, points, transactions, openedFromList, callRows, badIdMessage, sqlServices, injected, errors };
});
