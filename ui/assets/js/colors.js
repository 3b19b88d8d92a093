// Colours from the Okabe–Ito palette, which stays distinguishable with the common colour-vision
// deficiencies; errors and slowness also differ in line style and label, never in colour alone.

export const C = {
  ok: '#0072B2', // blue
  slow: '#E69F00', // orange
  error: '#D55E00', // vermillion
  idle: '#8a8f98',
  sky: '#56B4E9',
  green: '#009E73',
  purple: '#CC79A7',
  ink: '#1d232b',
};

/// The equalizer's three bands in Scouter's order (blue, yellow, red), colour-blind safe.
export const ACTIVE = [['<3s', C.ok], ['3-8s', C.slow], ['>=8s', C.error]];

export const KIND = {
  server: { fill: '#dcebf7', stroke: C.ok, label: 'service' },
  database: { fill: '#f6e6d0', stroke: '#a86a00', label: 'database' },
  cache: { fill: '#d9f0e8', stroke: C.green, label: 'cache' },
  queue: { fill: '#f3e0ec', stroke: '#a24f82', label: 'queue' },
  external: { fill: '#e9e9ef', stroke: '#5a5f6b', label: 'external' },
  user: { fill: '#fff', stroke: C.ink, label: 'user' },
};

/// How a node or link looks from its figures: error share first, then slowness.
export function health(count, errors, slow, avgMs, slowMs) {
  if (!count) return { color: C.idle, state: 'idle' };
  const er = errors / count;
  if (er >= 0.05) return { color: C.error, state: 'error' };
  if ((slow && slow / count >= 0.05) || (slowMs && avgMs >= slowMs)) return { color: C.slow, state: 'slow' };
  if (er > 0) return { color: C.slow, state: 'some-errors' };
  return { color: C.ok, state: 'ok' };
}
