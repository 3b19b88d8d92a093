// The page's frame: navigation between views and the router. Each view reads its whole state
// from the URL's fragment, so reloading or pasting a link shows the same thing.
import { el, clear } from './dom.js';
import { current, href } from './state.js';
import { mapView } from './mapview.js';
import { traceView } from './trace.js';
import { replayView } from './replay.js';
import { compareView } from './compare.js';
import { sqlView } from './sql.js';

const VIEWS = {
  map: ['Server map', mapView],
  replay: ['Replay', replayView],
  compare: ['Compare', compareView],
  trace: ['Trace', traceView],
  sql: ['SQL', sqlView],
};

const nav = document.getElementById('nav');
const main = document.getElementById('main');
const banner = document.getElementById('banner');

function render() {
  const { view, params } = current();
  const [title, show] = VIEWS[view] || VIEWS.map;
  document.title = `${title} · Rewind`;
  // Switching views keeps the time range.
  const keep = {};
  for (const k of ['from', 'to']) if (params.get(k)) keep[k] = params.get(k);
  clear(nav, Object.entries(VIEWS).map(([v, [t]]) => el('a', { href: href(v, v === 'sql' || v === 'compare' ? {} : keep), class: v === view ? 'active' : undefined, text: t })));
  banner.hidden = true;
  document.body.dataset.view = view;
  const root = el('div', { class: 'view', id: 'view-' + view });
  clear(main, root);
  Promise.resolve(show(root, params)).catch(fail);
}

function fail(e) {
  banner.hidden = false;
  banner.textContent = 'Something went wrong: ' + (e && e.message ? e.message : String(e));
}

window.addEventListener('hashchange', render);
window.addEventListener('unhandledrejection', (ev) => fail(ev.reason));
render();
