// Rewind's UI against a server started with --query-token, in headless Chromium: the page asks
// for the token, says so when a wrong one is refused, works once given the right one, keeps it
// for the tab only (a reload does not ask again, a new tab does) and never in the URL or in
// localStorage. Used by tests/it/ui.rs. Usage: node ui_token.js QUERY_URL TOKEN
'use strict';

const { report } = require('./browser');

const [base, token] = process.argv.slice(2);

report(async (browser) => {
  const seen = { errors: [] };
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('console', (m) => {
    // The 401s before the token is given are the point of this test.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) seen.errors.push(m.text());
  });
  await page.goto(base + '/');
  await page.waitForSelector('#token-prompt');
  seen.firstPrompt = await page.textContent('#token-prompt p');
  await page.fill('#token-input', 'wrong-' + token);
  await page.click('#token-prompt button');
  await page.waitForSelector('#token-prompt p.err');
  seen.refusedPrompt = await page.textContent('#token-prompt p');
  await page.fill('#token-input', token);
  await page.click('#token-prompt button');
  await page.waitForSelector('#map svg .node');
  seen.nodes = await page.$$eval('#map .node', (ns) => ns.map((n) => n.dataset.name));
  seen.promptsLeft = await page.$$eval('#token-prompt', (ps) => ps.length);
  await page.reload();
  await page.waitForSelector('#map svg .node');
  seen.promptAfterReload = await page.$$eval('#token-prompt', (ps) => ps.length);
  seen.url = page.url();
  seen.localStorage = await page.evaluate(() => localStorage.length);
  const other = await (await browser.newContext()).newPage();
  await other.goto(base + '/');
  await other.waitForSelector('#token-prompt');
  seen.newTabPrompt = true;
  return seen;
});
