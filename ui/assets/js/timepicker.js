// The time range: presets from 5 minutes to 7 days ending now, or a custom range. Kept in the URL
// as absolute `from`/`to` (Unix ms), so a shared link shows the same minutes later on.
import { el } from './dom.js';
import { num, patch } from './state.js';

export const PRESETS = [['5m', 5], ['15m', 15], ['1h', 60], ['6h', 360], ['1d', 1440], ['7d', 10080]];

export function rangeOf(params, dfltMinutes = 60) {
  const to = num(params, 'to', nowMs());
  const from = num(params, 'from', to - dfltMinutes * 60000);
  return { from, to: to > from ? to : from + 1000 };
}

/// The present, to the next whole second: where ranges "ending now" end.
export const nowMs = () => Math.ceil(Date.now() / 1000) * 1000;

/// Unix ms as a `datetime-local` input's value (local time, to the second).
export const local = (t) => new Date(t - new Date(t).getTimezoneOffset() * 60000).toISOString().slice(0, 19);

/// The picker; `onChange({from, to})` after the URL has been updated.
export function timePicker(range, onChange) {
  const fromIn = el('input', { type: 'datetime-local', step: '1', value: local(range.from), 'aria-label': 'from' });
  const toIn = el('input', { type: 'datetime-local', step: '1', value: local(range.to), 'aria-label': 'to' });
  const set = (from, to) => {
    fromIn.value = local(from);
    toIn.value = local(to);
    patch({ from, to });
    onChange({ from, to });
  };
  const buttons = PRESETS.map(([label, minutes]) => el('button', {
    type: 'button',
    class: 'preset',
    text: label,
    title: `the last ${label}, ending now`,
    onclick: () => { const to = nowMs(); set(to - minutes * 60000, to); },
  }));
  const apply = el('button', {
    type: 'button',
    text: 'Apply',
    onclick: () => {
      const f = new Date(fromIn.value).getTime(), t = new Date(toIn.value).getTime();
      if (Number.isFinite(f) && Number.isFinite(t) && t > f) set(f, t);
    },
  });
  return el('div', { class: 'picker', role: 'group', 'aria-label': 'time range' }, 'last', buttons, el('span', { class: 'sep' }), fromIn, '→', toIn, apply);
}
