// How large an XLog and a server map stay smooth in the UI: frame times in headless Chromium
// (Debian's, software rendering, no GPU) for synthetic answers of growing size, served to the
// real UI of a running Rewind by intercepting its API calls.
// Usage: node benches/ui/frames.js http://127.0.0.1:8080   (any running `rewind serve`)
// The synthetic answers come from a small server of this script's own, which passes everything
// else (the page, its modules) through to Rewind: a browser-side interception would carry
// a hundred megabytes of JSON over the DevTools protocol, which is not what is measured.
'use strict';

const http = require('http');
const path = require('path');
const { chromium } = require(path.join(__dirname, '../../tests/node/node_modules/playwright-core'));
const { ARGS } = require(path.join(__dirname, '../../tests/node/browser'));

const base = process.argv[2] || 'http://127.0.0.1:8080';
const TO = 1796000000000, FROM = TO - 3600000;

function xlog(n) {
  // A seeded generator, so every run draws the same dots.
  let s = 42;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const d = { end_ms: [], elapsed_ms: [], error: [], trace_id: [], service: [], sql_ms: [], api_ms: [], cpu_ms: [], count: n, truncated: false };
  const id = '0123456789abcdef0123456789abcdef';
  for (let i = 0; i < n; i++) {
    d.end_ms.push(FROM + rnd() * 3600000);
    d.elapsed_ms.push(Math.exp(rnd() * 6));
    d.error.push(rnd() < 0.02);
    d.trace_id.push(id);
    d.service.push('svc');
    d.sql_ms.push(0);
    d.api_ms.push(0);
    d.cpu_ms.push(0);
  }
  return JSON.stringify(d);
}

function map(n) {
  // Layers of services fanning out to databases and peers, with some cross links.
  const nodes = [{ name: 'USER', kind: 'user' }], links = [];
  const kinds = ['server', 'server', 'server', 'database', 'cache', 'queue', 'external'];
  for (let i = 1; i < n; i++) nodes.push({ name: `node-${i}`, kind: kinds[i % kinds.length] });
  for (let i = 1; i < n; i++) {
    const parent = i < 4 ? 0 : 1 + Math.floor((i - 1) / 3);
    links.push([nodes[Math.min(parent, i - 1)].name, nodes[i].name]);
    if (i % 5 === 0 && i > 6) links.push([nodes[i - 6].name, nodes[i].name]);
  }
  const fig = (c) => ({ count: c, errors: c % 7, slow: 0, avg_ms: 12.5, max_ms: 90, p50_ms: 10, p90_ms: 30, p99_ms: 80, apdex: 0.98, histogram: { '1s': c, '3s': 0, '5s': 0, Slow: 0, Error: c % 7 } });
  return JSON.stringify({
    from_ms: FROM, to_ms: TO,
    nodes: nodes.map((x, i) => ({ ...x, instances: [], ...fig(1000 + i) })),
    links: links.map(([source, target], i) => ({ source, target, target_kind: 'server', ...fig(500 + i) })),
  });
}

const pct = (xs, p) => { const s = xs.slice().sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] || 0; };

async function frames(page, gesture) {
  await page.evaluate(() => {
    window.__frames = [];
    let last = performance.now();
    const tick = (t) => { window.__frames.push(t - last); last = t; if (window.__frames.length < 400) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });
  await gesture();
  const f = await page.evaluate(() => window.__frames.slice(2));
  return { p50: pct(f, 0.5), p95: pct(f, 0.95), max: Math.max(...f) };
}

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
  let body = {};
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p.startsWith('/api/')) {
      const b = body[p];
      res.writeHead(b ? 200 : 404, { 'content-type': 'application/json' });
      res.end(b || '{"error":{"code":"bench","message":"not served in the bench"}}');
      return;
    }
    http.get(base + req.url, (up) => { res.writeHead(up.statusCode, up.headers); up.pipe(res); });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const local = `http://127.0.0.1:${server.address().port}`;
  const rows = [];
  for (const [points, nodes] of [[100000, 10], [250000, 25], [500000, 50], [1000000, 100], [2000000, 200]]) {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    page.on('crash', () => console.error('page crashed at', points));
    page.on('pageerror', (e) => console.error('page error', String(e)));
    body = { '/api/xlog': Buffer.from(xlog(points)), '/api/servermap': map(nodes), '/api/services': '{"services":[]}' };
    const t0 = Date.now();
    await page.goto(`${local}/#/map?from=${FROM}&to=${TO}`);
    await page.waitForFunction((n) => Number(document.getElementById('xlog').dataset.points) === n, points, { timeout: 120000 });
    const loaded = Date.now() - t0;
    const draws = [];
    for (let i = 0; i < 5; i++) {
      await page.selectOption('select[aria-label="y scale"]', i % 2 ? 'lin' : 'log');
      draws.push(Number(await page.getAttribute('#xlog', 'data-draw-ms')));
    }
    // Dragging a selection box over the dots.
    const b = await page.locator('.xlog-over').boundingBox();
    const drag = await frames(page, async () => {
      await page.mouse.move(b.x + 80, b.y + 20);
      await page.mouse.down();
      for (let i = 0; i < 60; i++) await page.mouse.move(b.x + 80 + i * 12, b.y + 20 + i * 4);
      await page.mouse.up();
    });
    // Panning and zooming the map.
    await page.waitForSelector('#map svg .node');
    const m = await page.locator('#map svg').boundingBox();
    const pan = await frames(page, async () => {
      await page.mouse.move(m.x + 5, m.y + 5);
      await page.mouse.down();
      for (let i = 0; i < 60; i++) await page.mouse.move(m.x + 5 + i * 4, m.y + 5 + i * 2);
      await page.mouse.up();
      for (let i = 0; i < 20; i++) await page.mouse.wheel(0, i % 2 ? 120 : -120);
    });
    console.error('measured', points, 'points,', nodes, 'nodes');
    rows.push({ points, load_ms: loaded, draw_ms_p50: pct(draws, 0.5), drag_frame_p95: drag.p95, nodes, pan_frame_p50: pan.p50, pan_frame_p95: pan.p95 });
    await page.close();
  }
  await browser.close();
  server.close();
  console.log('| XLog points | load + first draw (ms) | full redraw (ms, p50) | box drag frame p95 (ms) | map nodes | pan/zoom frame p50 / p95 (ms) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.points.toLocaleString('en-US')} | ${r.load_ms} | ${r.draw_ms_p50.toFixed(1)} | ${r.drag_frame_p95.toFixed(1)} | ${r.nodes} | ${r.pan_frame_p50.toFixed(1)} / ${r.pan_frame_p95.toFixed(1)} |`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
