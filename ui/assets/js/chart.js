// Small canvas charts: lines over time (with a cursor for the replay) and labelled bars.
import { C } from './colors.js';
import { when } from './dom.js';

export function canvas(width, height, cls) {
  const c = document.createElement('canvas');
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(width * dpr);
  c.height = Math.round(height * dpr);
  c.style.width = width + 'px';
  c.style.height = height + 'px';
  if (cls) c.className = cls;
  const ctx = c.getContext('2d');
  ctx.scale(dpr, dpr);
  return { c, ctx, width, height };
}

const niceMax = (v) => {
  if (!(v > 0)) return 1;
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 2.5, 5, 10].map((m) => m * e).find((m) => m >= v);
};

/// `times`: ms; `series`: [{name, color, values, dash?}]. Returns {el, cursor(i)}.
export function lineChart({ title, times, series, width = 420, height = 120, unit = '' }) {
  const { c, ctx } = canvas(width, height, 'chart');
  const L = 44, R = 8, T = 16, B = 18;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter(Number.isFinite))));
  const n = times.length;
  const X = (i) => L + (n <= 1 ? 0 : (i / (n - 1)) * (width - L - R));
  const Y = (v) => height - B - (v / max) * (height - T - B);
  let at = null;
  function draw() {
    ctx.clearRect(0, 0, width, height);
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = C.ink;
    ctx.fillText(title, L, 11);
    ctx.fillStyle = '#666';
    ctx.textAlign = 'right';
    ctx.fillText(max.toLocaleString('en-US') + unit, L - 4, T + 4);
    ctx.fillText('0', L - 4, height - B);
    ctx.textAlign = 'left';
    if (n) {
      ctx.fillText(when(times[0]), L, height - 4);
      ctx.textAlign = 'right';
      ctx.fillText(when(times[n - 1]), width - R, height - 4);
      ctx.textAlign = 'left';
    }
    ctx.strokeStyle = '#ddd';
    ctx.beginPath();
    ctx.moveTo(L, height - B + 0.5);
    ctx.lineTo(width - R, height - B + 0.5);
    ctx.stroke();
    let lx = L + ctx.measureText(title).width + 12;
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.5;
      ctx.setLineDash(s.dash || []);
      ctx.beginPath();
      let pen = false;
      s.values.forEach((v, i) => {
        if (!Number.isFinite(v)) { pen = false; return; }
        if (pen) ctx.lineTo(X(i), Y(v));
        else ctx.moveTo(X(i), Y(v));
        pen = true;
      });
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = s.color;
      ctx.fillRect(lx, 5, 10, 3);
      ctx.fillStyle = C.ink;
      ctx.fillText(s.name, lx + 13, 11);
      lx += 18 + ctx.measureText(s.name).width;
    }
    if (at !== null && n) {
      ctx.strokeStyle = C.ink;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(Math.round(X(at)) + 0.5, T);
      ctx.lineTo(Math.round(X(at)) + 0.5, height - B);
      ctx.stroke();
      const label = series.map((s) => (Number.isFinite(s.values[at]) ? s.values[at].toFixed(s.values[at] < 10 ? 1 : 0) : '–')).join(' / ');
      ctx.textAlign = X(at) > width / 2 ? 'right' : 'left';
      ctx.fillText(label + unit, X(at) + (X(at) > width / 2 ? -4 : 4), T + 10);
      ctx.textAlign = 'left';
    }
  }
  draw();
  return { el: c, cursor: (i) => { at = i; draw(); } };
}

/// Bars with their labels and counts: `bars` [{label, value, color}].
export function barChart({ title, bars, width = 300, height = 120 }) {
  const { c, ctx } = canvas(width, height, 'chart');
  const T = 18, B = 30;
  const max = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const w = (width - 10) / Math.max(1, bars.length);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = C.ink;
  ctx.fillText(title, 4, 11);
  bars.forEach((b, i) => {
    const h = (b.value / max) * (height - T - B);
    ctx.fillStyle = b.color;
    ctx.fillRect(5 + i * w + 4, height - B - h, w - 8, h);
    ctx.fillStyle = C.ink;
    ctx.textAlign = 'center';
    ctx.fillText(b.label, 5 + i * w + w / 2, height - B + 12);
    ctx.fillText(b.value.toLocaleString('en-US'), 5 + i * w + w / 2, height - B + 25);
    ctx.textAlign = 'left';
  });
  return c;
}
