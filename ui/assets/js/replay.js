// The incident replay player: pick an incident from the finder (or any window up to an hour),
// then play, pause, step and scrub second by second at 1× to 60×, also from the keyboard (space,
// ←/→, shift for ten seconds, Home/End). The map colours its links by the second under the
// cursor, the equalizer shows what was in flight, the TPS, error and latency charts carry a
// cursor, and the XLog shows the transactions finished up to that second.
import * as api from './api.js';
import { el, clear, int, ms, when, span } from './dom.js';
import { num, patch, go } from './state.js';
import { timePicker, rangeOf, nowMs } from './timepicker.js';
import { serverMap, frameNodes } from './map.js';
import { lineChart } from './chart.js';
import { ACTIVE, C } from './colors.js';
import { scatter, loadScatter } from './xlog.js';

const SPEEDS = [1, 2, 5, 10, 30, 60];
const MAX_S = 3600;

export async function replayView(root, params) {
  let range = rangeOf(params, 15);
  const clamped = range.to - range.from > MAX_S * 1000;
  if (clamped) range = { from: range.to - MAX_S * 1000, to: range.to };
  const incidents = el('div', { class: 'incidents', id: 'incidents' });
  const player = el('div', { class: 'player', id: 'player' });
  clear(root,
    el('div', { class: 'toolbar' }, timePicker(range, () => replayView(root, currentParams()))),
    el('section', {}, el('h2', { text: 'Incidents of the last 24 hours' }), incidents),
    clamped ? el('p', { class: 'warn', text: 'A replay is second by second over at most an hour: showing the last hour of the range.' }) : null,
    player);
  findIncidents(incidents);
  await loadPlayer(player, range, params);
}

const currentParams = () => new URLSearchParams(location.hash.split('?')[1] || '');

async function findIncidents(box) {
  const to = nowMs();
  clear(box, el('p', { class: 'hint', text: 'looking for windows that left their baseline…' }));
  try {
    const d = await api.get('/api/incidents', { from: to - 86400000, to });
    if (!d.incidents.length) { clear(box, el('p', { class: 'hint', text: 'No incident in the last 24 hours: pick any window above.' })); return; }
    clear(box, el('table', { class: 'grid compact' },
      el('tr', {}, ['start', 'length', 'severity', 'worst', 'reason', ''].map((t) => el('th', { text: t }))),
      d.incidents.map((i) => {
        const from = Math.floor(i.start_ms / 1000) * 1000 - 120000, until = Math.min(i.end_ms + 120000, from + MAX_S * 1000);
        return el('tr', { class: 'sev-' + i.severity },
          el('td', { text: when(i.start_ms, true) }), el('td', { text: span((i.end_ms - i.start_ms) / 1000) }), el('td', { text: i.severity }),
          el('td', { text: i.worst_link ? `${i.worst_link.source} → ${i.worst_link.target}` : i.worst_service }), el('td', { text: i.reason }),
          el('td', {}, el('button', { type: 'button', class: 'replay-incident', text: 'replay', onclick: () => go('replay', { from, to: until, t: Math.floor(i.start_ms / 1000) * 1000 - 10000 }) })));
      })));
  } catch (e) {
    clear(box, el('p', { class: 'err', text: e.message }));
  }
}

async function loadPlayer(box, range, params) {
  clear(box, el('p', { class: 'hint', text: 'loading the window…' }));
  let map, frames;
  try {
    [map, frames] = await Promise.all([
      api.get('/api/servermap', { from: range.from, to: range.to }),
      api.get('/api/replay', { from: range.from, to: range.to }).then((d) => d.frames),
    ]);
  } catch (e) {
    clear(box, el('p', { class: 'err', text: e.message }));
    return;
  }
  if (!frames.length) { clear(box, el('p', { class: 'hint', text: 'No seconds in this window.' })); return; }
  const times = frames.map((f) => f.time_ms);
  const drawn = serverMap(map, { onSelect: () => {} });
  const mapBox = el('div', { class: 'map-box small', id: 'replay-map' }, drawn.el);
  const tps = lineChart({ title: 'transactions per second', times, width: 380, series: [{ name: 'tps', color: C.ok, values: frames.map((f) => f.tps) }] });
  const errs = lineChart({ title: 'errors per second', times, width: 380, series: [{ name: 'errors', color: C.error, values: frames.map((f) => f.errors), dash: [5, 3] }] });
  const lat = lineChart({ title: 'latency (ms)', times, width: 380, unit: '', series: [
    { name: 'p50', color: C.ok, values: frames.map((f) => (f.count ? f.p50_ms : NaN)) },
    { name: 'p99', color: C.slow, values: frames.map((f) => (f.count ? f.p99_ms : NaN)) }] });
  const eq = el('div', { class: 'equalizer', id: 'equalizer' });
  const sc = scatter({ width: 760, height: 220 , onDot: (id) => go('trace', { id }) });
  const clock = el('div', { class: 'clock', id: 'clock' });
  const xinfo = el('p', { class: 'hint' });
  const figures = el('div', { class: 'figures', id: 'figures' });
  const scrub = el('input', { type: 'range', min: '0', max: String(frames.length - 1), value: '0', class: 'grow', id: 'scrub', 'aria-label': 'replay position' });
  const playBtn = el('button', { type: 'button', id: 'play', text: '▶ play', title: 'space' });
  const speedSel = el('select', { id: 'speed', 'aria-label': 'speed' }, SPEEDS.map((s) => el('option', { value: String(s), text: s + '×' })));
  speedSel.value = String(SPEEDS.includes(num(params, 'speed', 1)) ? num(params, 'speed', 1) : 1);
  const stepBtn = (d, t) => el('button', { type: 'button', text: t, title: d > 0 ? '→ (shift: 10 s)' : '← (shift: 10 s)', 'aria-label': `step ${d} s`, onclick: () => seek(i + d) });
  clear(box,
    el('div', { class: 'controls' }, stepBtn(-10, '« 10 s'), stepBtn(-1, '‹ 1 s'), playBtn, stepBtn(1, '1 s ›'), stepBtn(10, '10 s »'), speedSel, scrub, clock,
      el('button', { type: 'button', text: 'compare with the window before', onclick: () => go('compare', { a_from: 2 * range.from - range.to, a_to: range.from, b_from: range.from, b_to: range.to }) })),
    figures,
    el('div', { class: 'replay-grid' }, mapBox, el('div', { class: 'replay-side' }, el('h3', { text: 'Active transactions (equalizer)' }), eq)),
    el('div', { class: 'charts' }, tps.el, errs.el, lat.el),
    el('h3', { text: 'XLog up to the cursor' }), sc.el, xinfo,
    el('p', { class: 'hint', text: 'Keys: space plays or pauses, ← → step a second (with shift, ten), Home and End jump to the ends. Click a dot to open its trace.' }));
  drawn.mounted();
  loadScatter(sc, { range, filters: {}, y: 'elapsed_ms', scale: 'log', info: xinfo }).catch((e) => { xinfo.textContent = e.message; xinfo.className = 'err'; });

  let i = 0, timer = null;
  function render() {
    const f = frames[i];
    drawn.setFigures(f.links, frameNodes(f));
    for (const c of [tps, errs, lat]) c.cursor(i);
    sc.setCursor(f.time_ms + 1000);
    clock.textContent = `${when(f.time_ms, true)}  (${i + 1}/${frames.length})`;
    figures.textContent = `${int(f.tps)} tps · ${int(f.errors)} errors · avg ${ms(f.avg_ms)} ms · p50 ${ms(f.p50_ms)} ms · p99 ${ms(f.p99_ms)} ms`;
    equalizer(eq, f);
    box.dataset.frame = String(i);
    box.dataset.time = String(f.time_ms);
    scrub.value = String(i);
  }
  let saved = 0;
  const save = () => { saved = performance.now(); patch({ t: frames[i].time_ms }); };
  function seek(j) {
    i = Math.max(0, Math.min(frames.length - 1, j));
    render();
    // The URL follows the cursor, but while playing at most twice a second.
    if (!timer || performance.now() - saved > 500) save();
  }
  function play(on) {
    clearInterval(timer);
    timer = null;
    playBtn.textContent = on ? '❚❚ pause' : '▶ play';
    box.dataset.playing = on ? '1' : '';
    if (!on) { save(); return; }
    if (i >= frames.length - 1) seek(0);
    timer = setInterval(() => {
      if (!box.isConnected) { clearInterval(timer); document.removeEventListener('keydown', keys); return; }
      if (i >= frames.length - 1) { play(false); return; }
      seek(i + 1);
    }, 1000 / Number(speedSel.value));
  }
  playBtn.addEventListener('click', () => play(!timer));
  // A clicked button keeps the focus, and space would then both press it and toggle the player.
  box.addEventListener('click', (ev) => { const b = ev.target.closest('button'); if (b) b.blur(); });
  speedSel.addEventListener('change', () => { patch({ speed: speedSel.value === '1' ? null : speedSel.value }); if (timer) play(true); });
  scrub.addEventListener('input', () => seek(Number(scrub.value)));
  function keys(ev) {
    if (!box.isConnected) { document.removeEventListener('keydown', keys); return; }
    if (ev.target.closest && ev.target.closest('input:not([type=range]), textarea, select')) return;
    const by = ev.shiftKey ? 10 : 1;
    if (ev.key === ' ') play(!timer);
    else if (ev.key === 'ArrowRight') seek(i + by);
    else if (ev.key === 'ArrowLeft') seek(i - by);
    else if (ev.key === 'Home') seek(0);
    else if (ev.key === 'End') seek(frames.length - 1);
    else return;
    ev.preventDefault();
  }
  document.addEventListener('keydown', keys);
  const t = num(params, 't', null);
  seek(t === null ? 0 : Math.max(0, times.findIndex((x) => x >= t)));
}

function equalizer(box, f) {
  const max = Math.max(1, ...f.services.map((s) => ACTIVE.reduce((n, [k]) => n + (s.active[k] || 0), 0)), ACTIVE.reduce((n, [k]) => n + (f.active[k] || 0), 0));
  const row = (name, a) => el('div', { class: 'eq-row' }, el('span', { class: 'eq-name', text: name }),
    el('div', { class: 'eq-bar' }, ACTIVE.map(([k, color]) => {
      const seg = el('div', { class: 'eq-seg', title: `${k}: ${a[k] || 0}` });
      seg.style.width = ((a[k] || 0) / max) * 100 + '%';
      seg.style.background = color;
      return seg;
    })), el('span', { class: 'eq-num', text: ACTIVE.map(([k]) => int(a[k] || 0)).join(' / ') }));
  clear(box, el('div', { class: 'eq-legend' }, ACTIVE.map(([k, color]) => {
    const sw = el('span', { class: 'swatch' });
    sw.style.background = color;
    return el('span', {}, sw, k.replace('>=', '≥') + ' ');
  })), row('all', f.active), f.services.map((s) => row(s.name, s.active)));
}
