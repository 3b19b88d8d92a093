// A layered ("Sugiyama") layout for the server map: callers left of callees, the users first.
// Cycles are broken at depth-first back edges, each node goes to the rank of its longest path
// from a root, and each rank is ordered by its neighbours' mean position, sweeping both ways,
// which is what keeps links from crossing on maps of up to a hundred or so nodes.

export const COL = 280, ROW = 84;

export function layered(names, edges) {
  const idx = new Map(names.map((n, i) => [n, i]));
  const out = names.map(() => []), inn = names.map(() => []);
  for (const [s, t] of edges) {
    const a = idx.get(s), b = idx.get(t);
    if (a === undefined || b === undefined || a === b) continue;
    out[a].push(b);
    inn[b].push(a);
  }
  // Depth-first from the roots (USER and nodes nobody calls), then from whatever is left.
  const state = new Uint8Array(names.length); // 0 new, 1 on stack, 2 done
  const forward = names.map(() => []);
  const order = names.map((_, i) => i).sort((a, b) => (inn[a].length === 0) - (inn[b].length === 0) || 0).reverse();
  for (const root of order) {
    if (state[root]) continue;
    const stack = [[root, 0]];
    state[root] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, i] = top;
      if (i < out[v].length) {
        top[1]++;
        const w = out[v][i];
        if (state[w] === 0) { state[w] = 1; forward[v].push(w); stack.push([w, 0]); }
        else if (state[w] === 2) forward[v].push(w);
        // state 1: a back edge, left out of the ranking
      } else {
        state[v] = 2;
        stack.pop();
      }
    }
  }
  // Longest path from a root, in topological order of the acyclic part.
  const indeg = names.map(() => 0);
  forward.forEach((ws) => ws.forEach((w) => indeg[w]++));
  const rank = names.map(() => 0);
  const queue = names.map((_, i) => i).filter((i) => indeg[i] === 0);
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    for (const w of forward[v]) {
      rank[w] = Math.max(rank[w], rank[v] + 1);
      if (--indeg[w] === 0) queue.push(w);
    }
  }
  // A link across several ranks passes through a placeholder in each rank between, which the
  // ordering treats like a node: that is what keeps it from running through the nodes there.
  const n0 = names.length;
  const up = names.map((_, i) => inn[i].filter((u) => rank[u] < rank[i]));
  const down = names.map((_, i) => out[i].filter((w) => rank[w] > rank[i]));
  const chains = new Map();
  for (let v = 0; v < n0; v++) {
    for (const w of down[v].slice()) {
      if (rank[w] - rank[v] < 2) continue;
      const chain = [];
      let prev = v;
      down[v] = down[v].filter((x) => x !== w);
      up[w] = up[w].filter((x) => x !== v);
      for (let r = rank[v] + 1; r < rank[w]; r++) {
        const d = rank.length;
        rank.push(r);
        up.push([prev]);
        down.push([]);
        down[prev].push(d);
        chain.push(d);
        prev = d;
      }
      down[prev].push(w);
      up[w].push(prev);
      chains.set(JSON.stringify([names[v], names[w]]), chain);
    }
  }
  const label = (i) => (i < n0 ? names[i] : '\uffff');
  const ranks = [];
  rank.forEach((r, i) => (ranks[r] ||= []).push(i));
  for (const r of ranks) r && r.sort((a, b) => label(a).localeCompare(label(b)));
  const pos = new Float64Array(rank.length);
  ranks.forEach((r) => r && r.forEach((v, j) => { pos[v] = j; }));
  const mean = (vs, dflt) => (vs.length ? vs.reduce((s, v) => s + pos[v], 0) / vs.length : dflt);
  for (let sweep = 0; sweep < 8; sweep++) {
    const downward = sweep % 2 === 0;
    const seq = downward ? ranks.slice(1) : ranks.slice(0, -1).reverse();
    for (const r of seq) {
      if (!r) continue;
      const key = new Map(r.map((v) => [v, mean(downward ? up[v] : down[v], pos[v])]));
      r.sort((a, b) => key.get(a) - key.get(b));
      r.forEach((v, j) => { pos[v] = j; });
    }
  }
  const tallest = Math.max(1, ...ranks.map((r) => (r ? r.length : 0)));
  const xy = [];
  ranks.forEach((r, x) => r && r.forEach((v, j) => { xy[v] = { x: x * COL, y: (j + (tallest - r.length) / 2) * ROW, rank: x }; }));
  const at = new Map(names.map((n, i) => [n, xy[i]]));
  const routes = new Map([...chains].map(([k, chain]) => [k, chain.map((d) => xy[d])]));
  return { at, routes, width: Math.max(1, ranks.length) * COL, height: tallest * ROW };
}
