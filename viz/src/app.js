// grapevine's web visualizer: the cluster as the serving agent knows it, live
// over /v1/events (docs/ui.md). No build step: plain browser JavaScript plus
// cytoscape's prebuilt dist file, all served from the agent binary.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const LIVE_STATUSES = new Set(['alive', 'suspect']);
  const STATUS_COLOURS = { alive: '#22c55e', suspect: '#f59e0b', failed: '#ef4444', left: '#64748b', unknown: '#94a3b8' };

  // ------------------------------------------------------------------ helpers

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function fmtBytes(n) {
    if (typeof n !== 'number') return String(n);
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  function shortId(id) { return id && id.length > 10 ? id.slice(0, 8) + '…' : id; }
  function showBanner(text) {
    const b = $('banner');
    if (text) { b.textContent = text; b.hidden = false; } else { b.hidden = true; b.textContent = ''; }
  }
  function setConn(kind, text) {
    const c = $('conn');
    c.className = 'pill pill-' + kind;
    c.textContent = text;
  }
  window.addEventListener('error', (e) => showBanner('Page error: ' + (e.message || e)));
  window.addEventListener('unhandledrejection', (e) => showBanner('Page error: ' + ((e.reason && e.reason.message) || e.reason)));

  // ------------------------------------------------------------------ the graph

  const cy = cytoscape({
    container: $('cy'),
    wheelSensitivity: 0.3,
    minZoom: 0.05,
    maxZoom: 4,
    textureOnViewport: true,
    hideEdgesOnViewport: false,
    style: [
      { selector: 'node', style: {
        'background-color': 'data(colour)', 'label': 'data(label)', 'color': '#cbd5e1', 'font-size': 11,
        'text-valign': 'bottom', 'text-margin-y': 4, 'width': 18, 'height': 18, 'min-zoomed-font-size': 7,
        'border-width': 2, 'border-color': '#0b1220', 'text-outline-width': 2, 'text-outline-color': '#0b1220',
        'transition-property': 'background-color, border-color, border-width, width, height', 'transition-duration': '0.25s' } },
      { selector: 'node.self', style: { 'width': 26, 'height': 26, 'border-color': '#e2e8f0', 'border-width': 3 } },
      { selector: 'node.dim', style: { 'opacity': 0.18 } },
      { selector: 'node:selected', style: { 'border-color': '#38bdf8', 'border-width': 4 } },
      { selector: 'node.has-write', style: { 'border-color': '#c084fc', 'border-width': 5 } },
      { selector: 'node.flash', style: { 'width': 32, 'height': 32, 'border-color': '#e9d5ff', 'border-width': 6 } },
      { selector: 'edge', style: { 'width': 1.5, 'line-color': '#475569', 'curve-style': 'haystack', 'opacity': 0.85,
        'transition-property': 'line-color, width', 'transition-duration': '0.2s' } },
      { selector: 'edge.eager', style: { 'width': 3, 'line-color': '#38bdf8' } },
      { selector: 'edge.lazy', style: { 'line-style': 'dashed', 'line-color': '#64748b', 'curve-style': 'straight' } },
      { selector: 'edge.hide-lazy', style: { 'display': 'none' } },
      { selector: 'edge.passive', style: { 'width': 1, 'line-style': 'dotted', 'line-color': '#94a3b8', 'opacity': 0.45,
        'curve-style': 'straight', 'target-arrow-shape': 'vee', 'target-arrow-color': '#94a3b8', 'arrow-scale': 0.6 } },
      { selector: 'edge.broken', style: { 'line-color': '#ef4444', 'line-style': 'dashed', 'opacity': 0.6, 'curve-style': 'straight' } },
      { selector: 'edge.pulse', style: { 'line-color': '#c084fc', 'width': 6, 'opacity': 1, 'line-style': 'solid' } },
      { selector: 'edge.dim', style: { 'opacity': 0.08 } },
    ],
  });

  const positions = new Map();  // node id -> {x, y}; kept across reconnects so the layout never jumps
  let laidOut = false;
  let spiralSlot = 0;

  function spiralPosition(i) {
    // Phyllotaxis: an even, O(1) placement that scales to thousands of nodes.
    const golden = Math.PI * (3 - Math.sqrt(5));
    const r = 38 * Math.sqrt(i + 0.5);
    return { x: r * Math.cos(i * golden), y: r * Math.sin(i * golden) };
  }

  // A new node goes near the neighbours that already have a place, else on the spiral.
  function placeNew(id, neighbours) {
    let sx = 0, sy = 0, n = 0;
    for (const p of neighbours) {
      const pos = positions.get(p);
      if (pos) { sx += pos.x; sy += pos.y; n++; }
    }
    let pos;
    if (n > 0) {
      const a = Math.random() * 2 * Math.PI, r = 50 + Math.random() * 30;
      pos = { x: sx / n + r * Math.cos(a), y: sy / n + r * Math.sin(a) };
    } else {
      pos = spiralPosition(spiralSlot++);
    }
    positions.set(id, pos);
    return pos;
  }

  function savePositions() { cy.nodes().forEach((n) => { positions.set(n.id(), { ...n.position() }); }); }

  const SMALL_GRAPH = 30;  // nodes: up to this many, joins re-run the layout

  function runLayout(animate) {
    const n = cy.nodes().length;
    if (n === 0) return;
    let layout;
    if (n <= SMALL_GRAPH) {
      // A small cluster (the 5-node demo): a circle, sorted by name, so every
      // node and link is readable at the capped zoom of fitGraph.
      layout = cy.layout({ name: 'circle', animate: !!animate, animationDuration: 600, fit: false, padding: 40,
        radius: Math.max(140, n * 28), sort: (a, b) => String(a.data('label')).localeCompare(String(b.data('label'))) });
    } else if (n <= 400) {
      layout = cy.layout({ name: 'cose', animate: !!animate, animationDuration: 600, randomize: !animate, fit: false,
        padding: 40, nodeRepulsion: () => 9000, idealEdgeLength: () => 70, numIter: 1500 });
    } else {
      const ids = cy.nodes().map((x) => x.id()).sort();
      const slot = new Map(ids.map((id, i) => [id, i]));
      layout = cy.layout({ name: 'preset', animate: !!animate, fit: false, padding: 40,
        positions: (node) => spiralPosition(slot.get(node.id())) });
      spiralSlot = ids.length;
    }
    layout.one('layoutstop', () => { savePositions(); fitGraph(false); });
    layout.run();
    if (!animate) savePositions();  // cose runs synchronously without animation
  }

  // Fits the graph, but a small cluster is not blown up past a readable size.
  function fitGraph(animate) {
    const eles = cy.elements();
    if (eles.empty()) return;
    const box = eles.boundingBox();
    const pad = 50;
    const zoom = Math.min(1.25, (cy.width() - 2 * pad) / Math.max(1, box.w), (cy.height() - 2 * pad) / Math.max(1, box.h));
    const pan = { x: cy.width() / 2 - zoom * (box.x1 + box.w / 2), y: cy.height() / 2 - zoom * (box.y1 + box.h / 2) };
    if (animate) cy.animate({ zoom, pan, duration: 300 }); else cy.viewport({ zoom, pan });
  }

  // Brings cytoscape in line with a model: {nodes: Map id -> {id, label, status, self}, edges: Map id -> {...}}.
  // Existing nodes keep their positions; only new ones are placed.
  let bigGraph = false;
  function syncGraph(model) {
    const firstFill = !laidOut && model.nodes.size > 0;
    // Style transitions redraw every frame while they run: only for small graphs.
    if ((model.nodes.size > 300) !== bigGraph) {
      bigGraph = model.nodes.size > 300;
      cy.style().selector('node, edge').style('transition-duration', bigGraph ? 0 : 0.25).update();
    }
    const adjacency = new Map();
    for (const e of model.edges.values()) {
      if (e.cls === 'passive') continue;
      if (!adjacency.has(e.source)) adjacency.set(e.source, []);
      if (!adjacency.has(e.target)) adjacency.set(e.target, []);
      adjacency.get(e.source).push(e.target);
      adjacency.get(e.target).push(e.source);
    }
    const showLazy = $('show-lazy').checked;
    let added = 0;
    cy.batch(() => {
      cy.nodes().forEach((n) => { if (!model.nodes.has(n.id())) n.remove(); });
      for (const node of model.nodes.values()) {
        const colour = STATUS_COLOURS[node.status] || STATUS_COLOURS.unknown;
        let c = cy.getElementById(node.id);
        if (c.empty()) {
          const pos = positions.get(node.id) || placeNew(node.id, adjacency.get(node.id) || []);
          added++;
          c = cy.add({ group: 'nodes', data: { id: node.id, label: node.label, colour, status: node.status }, position: { ...pos } });
        } else {
          if (c.data('label') !== node.label) c.data('label', node.label);
          if (c.data('colour') !== colour) c.data({ colour, status: node.status });
        }
        c.toggleClass('self', !!node.self);
      }
      cy.edges().forEach((e) => { if (!model.edges.has(e.id())) e.remove(); });
      for (const e of model.edges.values()) {
        if (!model.nodes.has(e.source) || !model.nodes.has(e.target)) continue;
        let c = cy.getElementById(e.id);
        if (c.empty()) c = cy.add({ group: 'edges', data: { id: e.id, source: e.source, target: e.target, kind: e.cls } });
        else if (c.data('kind') !== e.cls) c.data('kind', e.cls);
        for (const k of ['eager', 'lazy', 'active', 'passive']) c.toggleClass(k, e.cls === k);
        c.toggleClass('broken', !!e.broken);
        c.toggleClass('hide-lazy', e.cls === 'lazy' && !showLazy);
      }
    });
    if (firstFill) {
      laidOut = true;
      runLayout(false);
    } else if (added > 0 && model.nodes.size <= SMALL_GRAPH) {
      // A small cluster is laid out again when a node joins (the page often
      // opens before the other nodes' records arrived); a large one keeps
      // every position and only places the newcomer, so it never thrashes.
      runLayout(true);
    }
  }

  // ------------------------------------------------------------------ write spread

  // One write (origin, seq) animated along the tree: the origin lights first;
  // each tick, a lit node lights the eager (tree) neighbours whose records show
  // the write, pulsing the edge. Holders the tree does not reach (repairs via
  // lazy links or anti-entropy) light over any link after a tick without progress.
  const spread = {
    write: null,       // {origin, seq, keys, label}
    lit: new Set(),
    pulses: 0,
    timer: null,
    stalls: 0,
    holders: () => new Set(),  // set by the mode (live or replay)
    liveCount: () => 0,
    history: [],
  };

  function pulseEdge(a, b, colour) {
    const edges = cy.getElementById(a).edgesWith(cy.getElementById(b)).filter((e) => !e.hasClass('passive'));
    if (edges.empty()) return false;
    spread.pulses++;
    edges.addClass('pulse');
    if (colour) edges.style('line-color', colour);
    setTimeout(() => { edges.removeClass('pulse'); if (colour) edges.removeStyle('line-color'); }, 900);
    return true;
  }
  function lightNode(id) {
    spread.lit.add(id);
    const n = cy.getElementById(id);
    if (n.empty()) return;
    n.addClass('has-write flash');
    setTimeout(() => n.removeClass('flash'), 450);
  }

  function startWrite(write) {
    cy.nodes('.has-write').removeClass('has-write');
    spread.write = write;
    spread.lit = new Set();
    spread.pulses = 0;
    spread.stalls = 0;
    if (!spread.history.some((w) => w.origin === write.origin && w.seq === write.seq)) {
      spread.history.unshift(write);
      spread.history.length = Math.min(spread.history.length, 12);
    }
    $('write-card').hidden = false;
    if (!spread.timer) spread.timer = setInterval(stepWrite, 300);
    stepWrite();
  }

  function stepWrite() {
    const w = spread.write;
    if (!w || spread.manual) return;
    const holders = spread.holders(w);
    if (spread.lit.size === 0) {
      if (holders.has(w.origin)) lightNode(w.origin);
      else if (holders.size > 0) lightNode(holders.values().next().value);
    }
    let progress = false;
    const newly = [];
    for (const id of spread.lit) {
      const n = cy.getElementById(id);
      if (n.empty()) continue;
      n.connectedEdges('.eager').forEach((e) => {
        const other = e.source().id() === id ? e.target().id() : e.source().id();
        if (!spread.lit.has(other) && holders.has(other) && !newly.includes(other)) { newly.push(other); pulseEdge(id, other); }
      });
    }
    for (const id of newly) { lightNode(id); progress = true; }
    if (!progress) {
      const missing = [...holders].filter((id) => !spread.lit.has(id));
      if (missing.length > 0 && ++spread.stalls >= 2) {
        for (const id of missing) {
          const n = cy.getElementById(id);
          let from = null;
          if (!n.empty()) n.connectedEdges().not('.passive').forEach((e) => {
            const other = e.source().id() === id ? e.target().id() : e.source().id();
            if (!from && spread.lit.has(other)) from = other;
          });
          if (from) pulseEdge(from, id, '#f0abfc');
          lightNode(id);
        }
        spread.stalls = 0;
      }
    } else {
      spread.stalls = 0;
    }
    renderWriteCard(holders);
  }

  function renderWriteCard(holders) {
    const w = spread.write;
    const total = spread.liveCount();
    const have = holders ? holders.size : 0;
    $('wc-id').textContent = w.label;
    $('wc-keys').textContent = w.keys && w.keys.length ? w.keys.join(', ') : '';
    $('write-count').textContent = `${have}/${total}`;
    $('wc-fill').style.width = total ? Math.min(100, (100 * have) / total) + '%' : '0';
    const ul = $('wc-history');
    ul.replaceChildren(...spread.history.map((h) => el('li', {
      class: h === w ? 'current' : '',
      onclick: () => startWrite(h),
    }, h.label + (h.keys && h.keys.length ? ' · ' + h.keys[0] : ''))));
  }

  function resetWrites() {
    spread.write = null;
    spread.history = [];
    spread.lit = new Set();
    cy.nodes('.has-write').removeClass('has-write');
    $('write-card').hidden = true;
  }

  // ------------------------------------------------------------------ live cluster state

  const live = {
    self: null,
    nodes: new Map(),   // id -> {id, name, address, http, status, tags, record}
    selfApplied: {},    // this agent's applied vector, from its apply events
    es: null,
    active: true,       // false while a trace replays
    lastEventMs: 0,
  };

  function ensureNode(id) {
    let n = live.nodes.get(id);
    if (!n) { n = { id, name: null, address: '', http: '', status: null, tags: {}, record: null }; live.nodes.set(id, n); }
    return n;
  }
  function upsertMember(m) {
    if (m.status === 'reaped') {
      const n = live.nodes.get(m.id);
      if (n) { n.status = null; if (!n.record) live.nodes.delete(m.id); }
      return;
    }
    const n = ensureNode(m.id);
    n.name = m.name; n.address = m.address || n.address; n.http = m.http || n.http; n.tags = m.tags || {}; n.status = m.status;
  }
  function upsertRecord(r) {
    const n = ensureNode(r.id);
    if (n.record && r.version !== undefined && n.record.version !== undefined && r.version < n.record.version) return;
    n.record = r;
    if (!n.name) n.name = r.name;
    if (!n.address) n.address = r.address;
    if (!n.http) n.http = r.http;
    if (r.id === live.self) {
      for (const [o, s] of Object.entries(r.applied || {})) live.selfApplied[o] = Math.max(live.selfApplied[o] || 0, s);
    }
  }
  function dropRecord(id) {
    const n = live.nodes.get(id);
    if (!n) return;
    n.record = null;
    if (!n.status) live.nodes.delete(id);
  }
  function statusOf(n) { return n.status || (n.record ? 'alive' : 'unknown'); }

  function liveModel() {
    const nodes = new Map();
    for (const n of live.nodes.values()) {
      nodes.set(n.id, { id: n.id, label: n.name || shortId(n.id), status: statusOf(n), self: n.id === live.self });
    }
    const edges = new Map();
    const showPassive = $('show-passive').checked;
    for (const n of live.nodes.values()) {
      const r = n.record;
      const st = statusOf(n);
      if (!r || st === 'failed' || st === 'left') continue;  // a dead node's record is stale
      const eager = new Set(r.eager || []), lazy = new Set(r.lazy || []);
      for (const p of r.active || []) {
        const peer = live.nodes.get(p);
        if (!peer) continue;
        const [a, b] = n.id < p ? [n.id, p] : [p, n.id];
        const id = 'a:' + a + '|' + b;
        let e = edges.get(id);
        if (!e) { e = { id, source: a, target: b, cls: 'active', eagerSeen: false, lazySeen: false, broken: false }; edges.set(id, e); }
        if (eager.has(p)) e.eagerSeen = true; else if (lazy.has(p)) e.lazySeen = true;
        const ps = statusOf(peer);
        if (ps === 'failed' || ps === 'left') e.broken = true;
      }
      if (showPassive) {
        for (const p of r.passive || []) {
          if (!live.nodes.has(p)) continue;
          const id = 'p:' + n.id + '>' + p;
          edges.set(id, { id, source: n.id, target: p, cls: 'passive' });
        }
      }
    }
    for (const e of edges.values()) {
      if (e.cls === 'passive') continue;
      e.cls = e.eagerSeen ? 'eager' : e.lazySeen ? 'lazy' : 'active';
    }
    return { nodes, edges };
  }

  function liveHolders(w) {
    const out = new Set();
    for (const n of live.nodes.values()) {
      if (!LIVE_STATUSES.has(statusOf(n)) && statusOf(n) !== 'unknown') continue;
      let has = n.id === w.origin;
      if (n.id === live.self) has = has || (live.selfApplied[w.origin] || 0) >= w.seq;
      else if (n.record && n.record.applied) has = has || (n.record.applied[w.origin] || 0) >= w.seq;
      if (has) out.add(n.id);
    }
    return out;
  }
  function liveCount() {
    let c = 0;
    for (const n of live.nodes.values()) if (LIVE_STATUSES.has(statusOf(n))) c++;
    return c;
  }

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued || !live.active) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      if (!live.active) return;
      syncGraph(liveModel());
      renderCounts();
      renderList();
      renderPanel(false);
      if (spread.write) renderWriteCard(spread.holders(spread.write));
    });
  }

  function renderCounts() {
    const c = { alive: 0, suspect: 0, failed: 0, left: 0 };
    for (const n of listItems()) if (n.status in c) c[n.status]++;
    $('counts').replaceChildren(
      el('span', null, el('span', { class: 'dot alive' }), `${c.alive} alive`),
      el('span', null, el('span', { class: 'dot suspect' }), `${c.suspect} suspect`),
      el('span', null, el('span', { class: 'dot failed' }), `${c.failed} failed`),
      el('span', null, el('span', { class: 'dot left' }), `${c.left} left`));
  }

  // ------------------------------------------------------------------ node list and search

  let selected = null;

  function matches(n, q) {
    if (!q) return true;
    const name = (n.name || n.id).toLowerCase();
    return q.split(/\s+/).filter(Boolean).every((t) => {
      if (name.includes(t) || n.id.startsWith(t)) return true;
      for (const [k, v] of Object.entries(n.tags || {})) {
        const kv = (k + '=' + v).toLowerCase();
        if (kv.includes(t)) return true;
      }
      return false;
    });
  }

  let listTimer = null;
  function renderList() {
    if (listTimer) return;
    listTimer = setTimeout(() => { listTimer = null; renderListNow(); }, 120);
  }
  function listItems() {
    return live.active ? [...live.nodes.values()].map((n) => ({ id: n.id, name: n.name || shortId(n.id), status: statusOf(n), tags: n.tags || {}, self: n.id === live.self }))
      : (window.gvReplay ? window.gvReplay.listItems() : []);
  }
  function renderListNow() {
    const q = $('search').value.trim().toLowerCase();
    const items = listItems().filter((n) => matches(n, q)).sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    const shown = items.slice(0, 2000);
    const frag = document.createDocumentFragment();
    for (const n of shown) {
      const tags = Object.entries(n.tags).map(([k, v]) => `${k}=${v}`).join(' ');
      frag.append(el('li', { 'data-id': n.id, 'data-status': n.status, title: n.id, class: (n.id === selected ? 'selected ' : '') + (n.self ? 'self' : ''),
        onclick: () => select(n.id, true) },
        el('span', { class: 'dot ' + n.status }), el('span', { class: 'name' }, n.name), el('span', { class: 'tags' }, tags)));
    }
    $('node-list').replaceChildren(frag);
    const total = listItems().length;
    $('list-count').textContent = q ? `${items.length} of ${total} nodes match` : `${total} nodes`;
    // Dim the graph's nodes that the search leaves out.
    const ids = new Set(items.map((n) => n.id));
    cy.batch(() => {
      cy.nodes().forEach((n) => n.toggleClass('dim', !!q && !ids.has(n.id())));
      cy.edges().forEach((e) => e.toggleClass('dim', !!q && !(ids.has(e.source().id()) && ids.has(e.target().id()))));
    });
  }
  $('search').addEventListener('input', renderListNow);

  function select(id, center) {
    selected = id;
    cy.nodes(':selected').unselect();
    const n = cy.getElementById(id);
    if (!n.empty()) {
      n.select();
      if (center) cy.animate({ center: { eles: n }, duration: 300 });
    }
    renderListNow();
    renderPanel(true);
  }
  cy.on('tap', 'node', (e) => select(e.target.id(), false));
  $('p-close').addEventListener('click', () => { selected = null; cy.nodes(':selected').unselect(); $('panel').hidden = true; renderListNow(); });

  // ------------------------------------------------------------------ node panel

  const statusCache = new Map();  // node id -> {at, data | error}

  function kvTable(obj) {
    const t = el('table');
    for (const [k, v] of Object.entries(obj)) {
      let val = v;
      if (typeof v === 'number' && /bytes/.test(k)) val = fmtBytes(v) + (v >= 1024 ? ` (${v})` : '');
      else if (v && typeof v === 'object') val = JSON.stringify(v);
      t.append(el('tr', null, el('td', null, k.replace(/_/g, ' ')), el('td', { class: 'mono' }, String(val))));
    }
    return t;
  }
  function chips(ids, eagerSet) {
    const d = el('div');
    if (!ids || ids.length === 0) { d.append(el('span', { class: 'note' }, 'none')); return d; }
    for (const id of ids) {
      const n = live.nodes.get(id);
      d.append(el('span', { class: 'chip' + (eagerSet && eagerSet.has(id) ? ' eager' : ''), title: id, onclick: () => select(id, true) }, n && n.name ? n.name : shortId(id)));
    }
    return d;
  }
  function nameOf(id) { const n = live.nodes.get(id); return n && n.name ? n.name : shortId(id); }

  async function fetchStatus(n) {
    const url = n.id === live.self ? '/v1/status' : `http://${n.http}/ui/api/status`;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 3000);
    try {
      const res = await fetch(url, { signal: ctl.signal, cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      statusCache.set(n.id, { at: Date.now(), data: await res.json() });
    } catch (err) {
      statusCache.set(n.id, { at: Date.now(), error: `${n.http || 'no HTTP address'}: ${err.name === 'AbortError' ? 'timed out' : err.message}` });
    } finally {
      clearTimeout(timer);
    }
    if (selected === n.id) renderPanel(false);
  }

  let panelFetchTimer = null;
  function renderPanel(fresh) {
    if (!selected) return;
    if (!live.active) { if (window.gvReplay) window.gvReplay.renderPanel(selected); return; }
    const n = live.nodes.get(selected);
    const panel = $('panel');
    panel.hidden = false;
    if (!n) { $('p-name').textContent = shortId(selected); $('p-body').replaceChildren(el('p', { class: 'note' }, 'This node is no longer known.')); return; }
    const st = statusOf(n);
    $('p-name').replaceChildren(el('span', { class: 'dot ' + st }), n.name || shortId(n.id));
    const body = [];
    body.push(el('h3', null, 'Node'), kvTable({ id: n.id, status: st, address: n.address || '?', http: n.http || '?' }));
    body.push(el('h3', null, 'Tags'));
    body.push(Object.keys(n.tags || {}).length ? kvTable(n.tags) : el('p', { class: 'note' }, 'none'));
    const r = n.record;
    const cached = statusCache.get(n.id);
    const s = cached && cached.data;
    body.push(el('h3', null, 'State'));
    const applied = (s && s.applied) || (r && r.applied) || {};
    body.push(kvTable({ 'key count': s ? s.key_count : r ? r.key_count : '?', 'record age': r ? `${(r.age_ms / 1000).toFixed(1)} s at arrival` : 'no record' }));
    body.push(el('h3', null, 'Applied vector'));
    const av = el('table');
    for (const [o, seq] of Object.entries(applied)) av.append(el('tr', null, el('td', { title: o }, nameOf(o)), el('td', { class: 'mono' }, String(seq))));
    body.push(Object.keys(applied).length ? av : el('p', { class: 'note' }, 'empty'));
    body.push(el('h3', null, 'WAL'));
    if (s && s.wal) body.push(kvTable(s.wal));
    else if (cached && cached.error) body.push(el('p', { class: 'err' }, 'unreachable: ' + cached.error));
    else body.push(el('p', { class: 'note' }, st === 'failed' || st === 'left' ? 'the agent is ' + st : 'loading…'));
    body.push(el('h3', null, 'Snapshots'));
    if (s && s.snapshot) body.push(kvTable(s.snapshot));
    else body.push(el('p', { class: 'note' }, cached && cached.error ? 'unavailable' : '…'));
    const views = s || r;
    if (views) {
      const eager = new Set(views.eager || []);
      body.push(el('h3', null, `Active view (${(views.active || []).length}) · tree links outlined`), chips(views.active, eager));
      body.push(el('h3', null, `Eager (${(views.eager || []).length})`), chips(views.eager));
      body.push(el('h3', null, `Lazy (${(views.lazy || []).length})`), chips(views.lazy));
      body.push(el('h3', null, `Passive view (${(views.passive || []).length})`), chips(views.passive));
    }
    if (n.http && n.id !== live.self) body.push(el('p', null, el('a', { href: `http://${n.http}/ui/`, style: 'color:#38bdf8' }, `Open ${n.name || 'this node'}'s own view →`)));
    $('p-body').replaceChildren(...body);
    if (fresh || !cached || Date.now() - cached.at > 5000) {
      if (st !== 'failed' && st !== 'left' && !panelFetchTimer) {
        panelFetchTimer = setTimeout(() => { panelFetchTimer = null; }, 1000);
        fetchStatus(n);
      }
    }
  }

  // ------------------------------------------------------------------ the event stream

  function applySnapshot(s) {
    live.self = s.self;
    live.nodes = new Map();
    live.selfApplied = {};
    for (const m of s.members || []) upsertMember(m);
    for (const r of (s.topology && s.topology.nodes) || []) upsertRecord(r);
    const me = live.nodes.get(live.self);
    $('viewing').textContent = `as seen by ${me && me.name ? me.name : shortId(live.self)} (${location.host})`;
    document.title = `grapevine · ${me && me.name ? me.name : location.host}`;
  }

  function applyBatch(b) {
    for (const m of b.members || []) upsertMember(m);
    for (const r of b.records || []) upsertRecord(r);
    for (const id of b.left || []) dropRecord(id);
    let newest = null;
    for (const a of b.applies || []) {
      live.selfApplied[a.origin] = Math.max(live.selfApplied[a.origin] || 0, a.seq);
      if (a.keys) newest = a;
    }
    if (newest) {
      startWrite({ origin: newest.origin, seq: newest.seq, keys: newest.keys,
        label: `${nameOf(newest.origin)} #${newest.seq}` });
    }
  }

  function connect() {
    if (live.es) live.es.close();
    const es = new EventSource('/v1/events');
    live.es = es;
    es.addEventListener('snapshot', (e) => {
      live.lastEventMs = Date.now();
      applySnapshot(JSON.parse(e.data));
      setConn('live', 'live');
      showBanner(null);
      scheduleRender();
    });
    es.addEventListener('batch', (e) => {
      live.lastEventMs = Date.now();
      applyBatch(JSON.parse(e.data));
      scheduleRender();
    });
    es.onerror = () => {
      if (!live.active) return;
      setConn('down', 'unreachable');
      showBanner(`The agent at ${location.host} is unreachable — retrying. The graph shows the last state received.`);
    };
  }

  spread.holders = liveHolders;
  spread.liveCount = liveCount;

  // ------------------------------------------------------------------ controls

  $('show-passive').addEventListener('change', () => (live.active ? scheduleRender() : window.gvReplay && window.gvReplay.rerender()));
  $('show-lazy').addEventListener('change', () => {
    const show = $('show-lazy').checked;
    cy.edges('.lazy').forEach((e) => e.toggleClass('hide-lazy', !show));
  });
  $('relayout').addEventListener('click', () => runLayout(true));
  $('fit').addEventListener('click', () => fitGraph(true));

  // What the replay mode (replay.js) and the browser test use.
  window.gv = {
    cy, syncGraph, runLayout, spread, startWrite, renderWriteCard, renderCounts, resetWrites, stepWrite, lightNode, pulseEdge, renderListNow, showBanner, setConn,
    positions, resetLayout() { positions.clear(); laidOut = false; spiralSlot = 0; },
    select, el, selectedId: () => selected,
    enterReplay() {
      live.active = false;
      if (live.es) { live.es.close(); live.es = null; }
      resetWrites();
      cy.elements().remove();
      this.resetLayout();
      selected = null;
      $('panel').hidden = true;
      setConn('replay', 'replay');
      showBanner(null);
    },
    exitReplay() {
      resetWrites();
      cy.elements().remove();
      this.resetLayout();
      selected = null;
      $('panel').hidden = true;
      live.active = true;
      spread.manual = false;
      spread.holders = liveHolders;
      spread.liveCount = liveCount;
      setConn('wait', 'connecting');
      connect();
    },
    // For the browser test: what the page draws.
    state() {
      return {
        self: live.self,
        nodes: cy.nodes().map((n) => ({ id: n.id(), name: n.data('label'), status: n.data('status') })),
        edges: cy.edges().map((e) => ({ from: e.source().id(), to: e.target().id(), kind: e.data('kind') })),
        write: spread.write ? { origin: spread.write.origin, seq: spread.write.seq, keys: spread.write.keys,
          have: spread.holders(spread.write).size, live: spread.liveCount(), lit: spread.lit.size, pulses: spread.pulses } : null,
      };
    },
  };

  connect();
})();
