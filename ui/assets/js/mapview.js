// The home view, as in Pinpoint: the server map with a time slider, the selected node's or
// link's histogram beside it, and below them the XLog and the transactions of a dragged box.
import * as api from './api.js';
import { el, clear, int, ms, when, span } from './dom.js';
import { num, patch, go } from './state.js';
import { timePicker, rangeOf } from './timepicker.js';
import { serverMap, frameNodes } from './map.js';
import { histogramPanel } from './histogram.js';
import { filtersOf, filterBar, scatter, loadScatter, loadList, Y_METRICS } from './xlog.js';

export function selectionOf(params) {
  if (params.get('node')) return { node: params.get('node') };
  if (params.get('src') && params.get('dst')) return { link: [params.get('src'), params.get('dst')] };
  return null;
}

/// The XLog service that shows a selection's transactions: the callee's when it is a traced
/// service, otherwise the caller's (a database has no transactions of its own).
function xlogService(sel, map) {
  const kind = (name) => (map.nodes.find((n) => n.name === name) || {}).kind;
  if (!sel) return '';
  if (sel.node) return kind(sel.node) === 'server' ? sel.node : '';
  const [s, t] = sel.link;
  if (kind(t) === 'server') return t;
  return kind(s) === 'server' ? s : '';
}

export async function mapView(root, params) {
  let range = rangeOf(params);
  let sel = selectionOf(params);
  let slowMs = num(params, 'slow', null);
  let filters = filtersOf(params);
  let y = params.get('y') || 'elapsed_ms', scale = params.get('scale') || 'lin';
  const boxParam = (params.get('box') || '').split(',').map(Number);
  let box = boxParam.length === 4 && boxParam.slice(0, 3).every(Number.isFinite)
    ? { from: boxParam[0], to: boxParam[1], lo: boxParam[2], hi: Number.isFinite(boxParam[3]) ? boxParam[3] : null } : null;

  const mapBox = el('div', { class: 'map-box', id: 'map' });
  const side = el('aside', { class: 'side', id: 'side' });
  const sliderRow = el('div', { class: 'slider-row' });
  const xinfo = el('p', { class: 'hint', id: 'xinfo' });
  const list = el('div', { id: 'txbox' });
  const xfilters = el('div');
  const scatterBox = el('div', { class: 'scatter-box' });
  const mapInfo = el('p', { class: 'hint', id: 'mapinfo' });
  clear(root,
    el('div', { class: 'toolbar' }, timePicker(range, (r) => { range = r; box = null; patch({ box: null, at: null }); reloadAll(); })),
    el('section', { class: 'map-row' }, el('div', { class: 'map-col' }, mapBox, sliderRow, mapInfo), side),
    el('section', {}, el('h2', { text: 'Transactions (XLog)' }), xfilters, scatterBox, xinfo, list));

  let map = null, drawn = null, frames = null;
  const width = Math.max(600, Math.min(1400, root.clientWidth || 1200));
  const sc = scatter({
    width,
    onBox: (b) => { box = b; saveBox(); sc.showBox(box); loadList(box, { filters, y, target: list, onOpen: openTrace }); },
    onDot: (id) => openTrace(id),
  });
  scatterBox.append(sc.el);
  const saveBox = () => patch({ box: box ? [box.from, box.to, +box.lo.toFixed(3), box.hi === null ? 'inf' : +box.hi.toFixed(3)].join(',') : null });
  const openTrace = (id) => go('trace', { id, from: range.from, to: range.to });

  async function loadMap() {
    clear(mapBox, el('p', { class: 'hint', text: 'loading the map…' }));
    try {
      const q = { from: range.from, to: range.to };
      if (slowMs) Object.assign(q, { slow_ms: slowMs, apdex_ms: slowMs / 4 });
      map = await api.get('/api/servermap', q);
    } catch (e) {
      clear(mapBox, el('p', { class: 'err', text: e.message }));
      return;
    }
    if (!map.nodes.length) {
      clear(mapBox, el('p', { class: 'hint', text: 'Nothing was traced in this range. Pick a longer one, or send spans to the collector.' }));
      return;
    }
    drawn = serverMap(map, { onSelect: select, selected: sel, slowMs });
    clear(mapBox, drawn.el);
    drawn.mounted();
    mapBox.dataset.nodes = String(map.nodes.length);
    mapBox.dataset.links = String(map.links.length);
    mapInfo.textContent = `${map.nodes.length} nodes, ${map.links.length} links, ${when(range.from, true)} → ${when(range.to, true)} (${span((range.to - range.from) / 1000)}). Drag to pan, wheel to zoom; click a node or link.`;
    buildSlider();
  }

  function buildSlider() {
    frames = null;
    const play = el('button', { type: 'button', text: '▶', title: 'play the map through the range', 'aria-label': 'play the map' });
    const slider = el('input', { type: 'range', min: '0', max: '120', value: '120', class: 'grow', 'aria-label': 'time slider' });
    const label = el('span', { class: 'slider-label', text: 'whole range' });
    let timer = null;
    const show = async (i) => {
      if (!frames) {
        label.textContent = 'loading…';
        const step = Math.max(1, Math.ceil((range.to - range.from) / 1000 / 120));
        try {
          frames = (await api.get('/api/replay', { from: range.from, to: range.to, step: step * 1000 })).frames;
        } catch (e) {
          label.textContent = e.message;
          return;
        }
        slider.max = String(frames.length);
      }
      slider.value = String(i);
      if (i >= frames.length) {
        drawn.setFigures(map.links, map.nodes);
        label.textContent = 'whole range';
        patch({ at: null });
        return;
      }
      const f = frames[i];
      drawn.setFigures(f.links, frameNodes(f));
      label.textContent = `${when(f.time_ms, true)} · ${int(f.count)} calls, ${int(f.errors)} errors, p99 ${ms(f.p99_ms)} ms`;
      patch({ at: i });
    };
    slider.addEventListener('input', () => show(Number(slider.value)));
    play.addEventListener('click', async () => {
      if (timer) { clearInterval(timer); timer = null; play.textContent = '▶'; return; }
      play.textContent = '❚❚';
      let i = frames && Number(slider.value) < frames.length ? Number(slider.value) : 0;
      await show(i);
      timer = setInterval(() => {
        i++;
        if (!frames || i > frames.length || !play.isConnected) { clearInterval(timer); timer = null; play.textContent = '▶'; return; }
        show(i);
      }, 250);
    });
    clear(sliderRow, play, slider, label);
    const at = num(params, 'at', null);
    if (at !== null) show(at);
  }

  async function showSide() {
    if (!sel || !map) {
      clear(side, el('h3', { text: 'Select a node or link' }), el('p', { class: 'hint', text: 'Its response-time histogram, percentiles and per-pod breakdown show here, and the XLog below shows its transactions.' }),
        legend());
      return;
    }
    const title = sel.node ? sel.node : `${sel.link[0]} → ${sel.link[1]}`;
    const histo = el('div', { id: 'histogram' });
    const pods = el('div', { id: 'pods' });
    const podsBtn = el('button', { type: 'button', text: 'per pod', onclick: () => loadPods(pods) });
    clear(side, el('h3', { id: 'sel-title', text: title }), el('div', { class: 'row' }, podsBtn,
      el('button', { type: 'button', text: 'replay this range', onclick: () => go('replay', { from: range.from, to: range.to }) })), histo, pods);
    histogramPanel(histo, { range, subject: sel, slowMs, onSlow: (v) => { slowMs = v; patch({ slow: v }); reloadAll(); } });
  }

  async function loadPods(target) {
    clear(target, el('p', { class: 'hint', text: 'loading…' }));
    try {
      const q = { from: range.from, to: range.to, instances: 'true' };
      if (sel.node) Object.assign(q, { service: sel.node, in_depth: 1, out_depth: 1 });
      else Object.assign(q, { service: sel.link[0], in_depth: 1, out_depth: 1 });
      const m = await api.get('/api/servermap', q);
      const item = sel.node ? m.nodes.find((n) => n.name === sel.node) : m.links.find((l) => l.source === sel.link[0] && l.target === sel.link[1]);
      const rows = (item && item.by_instance) || [];
      const name = (r) => (sel.node ? r.instance : [r.source_instance, r.target_instance].filter(Boolean).join(' → ')) || '(unknown)';
      clear(target, el('table', { class: 'grid compact' },
        el('tr', {}, ['pod', 'calls', 'errors', 'avg', 'p99'].map((t) => el('th', { text: t }))),
        rows.map((r) => el('tr', {}, [name(r), int(r.count), int(r.errors), ms(r.avg_ms), ms(r.p99_ms)].map((v) => el('td', { text: v }))))));
    } catch (e) {
      clear(target, el('p', { class: 'err', text: e.message }));
    }
  }

  function select(s) {
    sel = s;
    drawn && drawn.select(sel);
    patch({ node: sel && sel.node, src: sel && sel.link && sel.link[0], dst: sel && sel.link && sel.link[1] });
    showSide();
    filters = { ...filters, xs: xlogService(sel, map) };
    box = null;
    patch({ xs: filters.xs, box: null });
    clear(list);
    buildFilters();
    loadXlog();
  }

  let services = [];
  function buildFilters() {
    const ysel = el('select', { 'aria-label': 'y axis' }, Y_METRICS.map(([v, t]) => el('option', { value: v, text: 'y: ' + t })));
    ysel.value = y;
    const ssel = el('select', { 'aria-label': 'y scale' }, el('option', { value: 'lin', text: 'linear' }), el('option', { value: 'log', text: 'log' }));
    ssel.value = scale;
    ysel.addEventListener('change', () => { y = ysel.value; box = null; patch({ y: y === 'elapsed_ms' ? null : y, box: null }); loadXlog(); });
    ssel.addEventListener('change', () => { scale = ssel.value; patch({ scale: scale === 'lin' ? null : scale }); if (sc.data) { sc.setData(sc.data, { from: range.from, to: range.to, y, scale }); sc.showBox(box); } });
    clear(xfilters, el('div', { class: 'row' }, filterBar(filters, services, (f) => { filters = f; box = null; patch({ ...f, box: null }); clear(list); loadXlog(); }), ysel, ssel));
  }

  async function loadXlog() {
    xinfo.textContent = 'loading…';
    try {
      if (!(await loadScatter(sc, { range, filters, y, scale, info: xinfo }))) return;
      sc.showBox(box);
      if (box) loadList(box, { filters, y, target: list, onOpen: openTrace });
    } catch (e) {
      xinfo.textContent = '';
      clear(list, el('p', { class: 'err', id: 'xmsg', text: e.message }));
    }
  }

  async function reloadAll() {
    await loadMap();
    showSide();
    buildFilters();
    loadXlog();
  }

  try {
    services = (await api.get('/api/services')).services.filter((s) => s.kind === 'server').map((s) => s.name);
  } catch { /* the filter then lists no services; the scatter shows the error */ }
  reloadAll();
}

function legend() {
  const item = (cls, text) => el('li', {}, el('span', { class: 'swatch ' + cls }), text);
  return el('ul', { class: 'legend' }, item('ok', 'healthy'), item('slow', 'slow, or some errors (dotted / dashed)'), item('error', '≥ 5% errors (dashed)'), item('idle', 'no calls'));
}
