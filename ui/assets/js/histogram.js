// Response times of the selected node or link: percentiles, Pinpoint's buckets and a series of
// p50/p90/p99, with the slow threshold adjustable (it also moves the apdex target).
import * as api from './api.js';
import { el, clear, ms, int, pct } from './dom.js';
import { C } from './colors.js';
import { barChart, lineChart } from './chart.js';

const BUCKET_COLOR = { '1s': C.ok, '3s': C.sky, '5s': C.slow, Slow: C.slow, Error: C.error };

export async function histogramPanel(box, { range, subject, slowMs, onSlow }) {
  const params = { from: range.from, to: range.to };
  if (subject.link) Object.assign(params, { source: subject.link[0], target: subject.link[1] });
  else Object.assign(params, { service: subject.node });
  if (slowMs) Object.assign(params, { slow_ms: slowMs, apdex_ms: slowMs / 4 });
  const slowIn = el('input', { type: 'number', min: '1', step: 'any', value: slowMs || '', placeholder: 'auto', class: 'short', 'aria-label': 'slow threshold ms' });
  slowIn.addEventListener('change', () => onSlow(Number(slowIn.value) > 0 ? Number(slowIn.value) : null));
  const head = el('div', { class: 'row' }, el('label', {}, 'slow ≥ ', slowIn, ' ms'));
  clear(box, head, el('p', { class: 'hint', text: 'loading…' }));
  let h;
  try {
    h = await api.get('/api/histogram', params);
  } catch (e) {
    clear(box, head, el('p', { class: 'err', text: e.message }));
    return;
  }
  const p = h.percentiles;
  const stats = el('table', { class: 'grid compact histo-stats' },
    el('tr', {}, ['count', 'errors', 'slow', 'avg', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max', 'apdex'].map((t) => el('th', { class: 'num', text: t }))),
    el('tr', {}, [int(h.count), int(h.errors), int(h.slow), ms(h.avg_ms), ms(p.p50_ms), ms(p.p90_ms), ms(p.p95_ms), ms(p.p99_ms), ms(p.p999_ms), ms(p.max_ms),
      h.apdex === null || h.apdex === undefined ? '' : h.apdex.toFixed(3)].map((v) => el('td', { class: 'num', text: v }))));
  const bars = barChart({
    title: 'calls by response time',
    bars: Object.entries(h.histogram).map(([label, value]) => ({ label, value, color: BUCKET_COLOR[label] || C.idle })),
    width: 300,
  });
  const s = h.series || [];
  const times = s.map((x) => x.time_ms);
  const lat = lineChart({
    title: `latency (ms), every ${Math.round(h.step_ms / 1000)} s`,
    times,
    width: 380,
    series: [
      { name: 'p50', color: C.ok, values: s.map((x) => (x.count ? x.p50_ms : NaN)) },
      { name: 'p90', color: C.sky, values: s.map((x) => (x.count ? x.p90_ms : NaN)), dash: [4, 2] },
      { name: 'p99', color: C.slow, values: s.map((x) => (x.count ? x.p99_ms : NaN)) },
    ],
  });
  const calls = lineChart({
    title: 'calls and errors',
    times,
    width: 380,
    series: [
      { name: 'calls', color: C.ok, values: s.map((x) => x.count) },
      { name: 'errors', color: C.error, values: s.map((x) => x.errors), dash: [5, 3] },
    ],
  });
  clear(box, head, stats, el('p', { class: 'hint', text: h.count ? `error rate ${pct(h.errors / h.count)}` : 'no calls in this range' }),
    el('div', { class: 'charts' }, bars, lat.el, calls.el));
  box.dataset.count = String(h.count);
}
