// Walks every view of Rewind's UI in headless Chromium (Debian's, through playwright-core) the
// way an on-call engineer would, against a server fed with the shop workload and an injected
// incident, and reports what was seen as JSON for tests/it/ui.rs to judge. Saves a screenshot of
// each view in SHOT_DIR.
// Usage: node ui_tour.js QUERY_URL '{"from":…,"to":…,"incidentStart":…,"incidentEnd":…}' SHOT_DIR
'use strict';

const path = require('path');
const { report } = require('./browser');

const [base, configJson, shots] = process.argv.slice(2);
const cfg = JSON.parse(configJson);

report(async (browser) => {
  const seen = { errors: [] };
  let expectHttpErrors = false;
  const watch = (page, view) => {
    page.on('pageerror', (e) => seen.errors.push(`${view}: ${e}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (expectHttpErrors && /Failed to load resource/.test(m.text())) return;
      seen.errors.push(`${view}: console: ${m.text()}`);
    });
  };
  const newPage = async (view) => {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    watch(page, view);
    return page;
  };
  const shot = (page, name) => page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
  // 1. The server map.
  const page = await newPage('map');
  await page.goto(`${base}/#/map?from=${cfg.from}&to=${cfg.to}`);
  await page.waitForSelector('#map[data-nodes] svg .node');
  await page.waitForFunction(() => Number(document.getElementById('xlog').dataset.points) > 0);
  seen.nodes = await page.$$eval('#map .node', (ns) => ns.map((n) => ({ name: n.dataset.name, kind: n.dataset.kind, label: n.querySelector('.node-sub').textContent })));
  seen.links = await page.$$eval('#map .link', (ls) => ls.map((l) => ({ source: l.dataset.source, target: l.dataset.target, count: Number(l.dataset.count), label: l.querySelector('.edge-label').textContent })));
  seen.allPoints = Number(await page.getAttribute('#xlog', 'data-points'));
  // The time slider shows one step of the range on the map, then the whole range again.
  const slide = (to) => page.evaluate((v) => {
    const s = document.querySelector('input[aria-label="time slider"]');
    s.value = v === 'end' ? s.max : v;
    s.dispatchEvent(new Event('input'));
  }, to);
  const linkCalls = () => page.$$eval('#map .link', (ls) => ls.reduce((n, l) => n + Number(l.dataset.count), 0));
  await slide('60');
  await page.waitForFunction(() => / calls, /.test(document.querySelector('.slider-label').textContent));
  seen.slider = { label: await page.textContent('.slider-label'), calls: await linkCalls() };
  await slide('end');
  await page.waitForFunction(() => document.querySelector('.slider-label').textContent === 'whole range');
  seen.slider.wholeCalls = await linkCalls();

  // 2. A click on the link frontend → catalog: its histogram, and the XLog of catalog.
  await page.click('#map .link[data-source="frontend"][data-target="catalog"] .edge-hit', { force: true });
  await page.waitForSelector('#histogram[data-count]');
  await page.waitForFunction(() => document.getElementById('xlog').dataset.services === 'catalog');
  seen.linkSelected = await page.textContent('#sel-title');
  seen.histogramCount = Number(await page.getAttribute('#histogram', 'data-count'));
  seen.linkPoints = Number(await page.getAttribute('#xlog', 'data-points'));
  seen.linkServices = await page.getAttribute('#xlog', 'data-services');
  await page.click('#pods button, #side button:has-text("per pod")');
  await page.waitForSelector('#pods table tr td');
  seen.pods = await page.$$eval('#pods tr', (rs) => rs.slice(1).map((r) => r.children[0].textContent));
  await page.screenshot({ path: path.join(shots, 'map.png') });

  // 3. A box dragged over the scatter lists its transactions.
  const box = await page.locator('.xlog-over').first().boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + 12);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.9, box.y + box.height - 23, { steps: 6 });
  await page.mouse.up();
  await page.waitForSelector('#txlist tbody tr');
  seen.listed = await page.$$eval('#txlist tbody tr', (rs) => rs.map((r) => Array.from(r.children).map((c) => c.textContent)));
  seen.listHead = await page.$$eval('#txlist thead th', (hs) => hs.map((h) => h.textContent));
  // Sorting by a header click.
  await page.click('#txlist thead th:has-text("elapsed ms")');
  seen.sortedAsc = await page.$$eval('#txlist tbody tr', (rs) => rs.map((r) => Number(r.children[3].textContent)));
  await page.evaluate(() => document.querySelector('.scatter-box').scrollIntoView());
  await page.screenshot({ path: path.join(shots, 'xlog.png') });

  // 4. The URL of this view, opened in a fresh tab, shows the same view.
  const mapUrl = page.url();
  const again = await newPage('map (reopened)');
  await again.goto(mapUrl);
  await again.waitForSelector('#txlist tbody tr');
  seen.reopened = {
    title: await again.textContent('#sel-title'),
    services: await again.getAttribute('#xlog', 'data-services'),
    listed: await again.$$eval('#txlist tbody tr', (rs) => rs.length),
  };
  await again.close();

  // 5. A transaction of the list opens its call stack.
  await page.click('#txlist tbody tr:first-child');
  await page.waitForSelector('#calltree tbody tr');
  seen.traceUrl = page.url();
  seen.traceId = new URLSearchParams(page.url().split('?')[1]).get('id');
  seen.callRows = await page.$$eval('#calltree tbody tr', (rs) => rs.length);
  seen.ganttRows = await page.$$eval('#gantt .grow-row', (rs) => rs.length);
  // A click on a row of the stack shows that span.
  const second = page.locator('#calltree tbody tr[data-span]:not([data-span=""])').nth(1);
  const spanId = await second.getAttribute('data-span');
  await second.click();
  await page.waitForFunction((id) => new URLSearchParams(location.hash.split('?')[1]).get('span') === id, spanId);
  seen.spanDetails = await page.textContent('#span-details h3');
  // Collapsing the root hides every row below it.
  await page.click('#calltree tbody tr:first-child button.toggle');
  seen.visibleAfterCollapse = await page.$$eval('#calltree tbody tr', (rs) => rs.filter((r) => !r.hidden).length);
  await page.click('#calltree tbody tr:first-child button.toggle');
  await shot(page, 'trace');

  // 6. The replay player over the incident.
  const rp = await newPage('replay');
  const from = cfg.incidentStart - 60000, to = cfg.incidentStart + 120000;
  await rp.goto(`${base}/#/replay?from=${from}&to=${to}&t=${cfg.incidentStart - 20000}`);
  await rp.waitForSelector('#player[data-frame]');
  await rp.waitForSelector('#incidents table tr td');
  seen.incidents = await rp.$$eval('#incidents tr', (rs) => rs.slice(1).map((r) => r.children[4].textContent));
  const state = () => rp.evaluate(() => ({
    frame: Number(document.getElementById('player').dataset.frame),
    time: Number(document.getElementById('player').dataset.time),
    mysql: Array.from(document.querySelectorAll('#replay-map .link[data-target="mysql"]')).map((l) => l.dataset.state),
    colors: Array.from(document.querySelectorAll('#replay-map .link')).map((l) => l.querySelector('.edge').getAttribute('stroke')),
  }));
  seen.replayStart = await state();
  await rp.keyboard.press('ArrowRight');
  seen.replayStep = await state();
  await rp.keyboard.press('Shift+ArrowRight');
  await rp.keyboard.press('Shift+ArrowRight');
  await rp.keyboard.press('Shift+ArrowRight');
  seen.replayIncident = await state();
  await rp.keyboard.press('ArrowLeft');
  seen.replayBack = await state();
  // A click on the play button, then space: paused again (the button does not keep the focus).
  await rp.click('#play');
  await rp.keyboard.press('Space');
  seen.replayClickSpace = await rp.getAttribute('#player', 'data-playing');
  await rp.evaluate(() => { document.getElementById('scrub').value = '70'; document.getElementById('scrub').dispatchEvent(new Event('input')); });
  await rp.selectOption('#speed', '10');
  await rp.keyboard.press('Space');
  await rp.waitForTimeout(1500);
  await rp.keyboard.press('Space');
  seen.replayPlayed = await state();
  await shot(rp, 'replay');
  const replayUrl = rp.url();
  const rp2 = await newPage('replay (reopened)');
  await rp2.goto(replayUrl);
  await rp2.waitForSelector('#player[data-frame]');
  seen.replayReopened = Number(await rp2.getAttribute('#player', 'data-time'));
  await rp2.close();

  // 7. The comparison of the minute before the incident with its first minute.
  const cp = await newPage('compare');
  await cp.goto(`${base}/#/compare?a_from=${cfg.incidentStart - 120000}&a_to=${cfg.incidentStart - 60000}&b_from=${cfg.incidentStart + 30000}&b_to=${cfg.incidentStart + 90000}`);
  await cp.waitForSelector('#changes tbody tr');
  seen.changes = await cp.$$eval('#changes tbody tr', (rs) => rs.map((r) => [0, 2, 11].map((i) => r.children[i].textContent)));
  await shot(cp, 'compare');

  // 8. The SQL console: a result, then an error shown as such.
  const sq = await newPage('sql');
  await sq.goto(`${base}/#/sql`);
  await sq.fill('#sql-text', 'SELECT service, count(*) AS transactions FROM xlog GROUP BY service ORDER BY service');
  await sq.click('#sql-run');
  await sq.waitForSelector('#sql-result tbody tr');
  seen.sqlRows = await sq.$$eval('#sql-result tbody tr', (rs) => rs.map((r) => Array.from(r.children).map((c) => c.textContent)));
  seen.sqlUrl = sq.url();
  await shot(sq, 'sql');
  expectHttpErrors = true;
  await sq.fill('#sql-text', 'DELETE FROM spans');
  await sq.click('#sql-run');
  await sq.waitForSelector('#sql-error');
  seen.sqlError = await sq.textContent('#sql-error');
  expectHttpErrors = false;
  const sq2 = await newPage('sql (reopened)');
  await sq2.goto(seen.sqlUrl);
  await sq2.waitForSelector('#sql-result tbody tr');
  seen.sqlReopened = await sq2.$$eval('#sql-result tbody tr', (rs) => rs.length);
  return seen;
});
