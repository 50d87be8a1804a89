// Replay of `grapevine sim --trace FILE` traces (docs/simulation.md, "Trace
// format"): JSON lines {t, k, ...}. link_up/link_down rebuild every active
// view at any time, GRAFT/PRUNE messages the eager (tree) links, up/down the
// node states, and deliver events animate each broadcast along the hops it
// really took. The file is read in the browser (never uploaded); only the
// events that matter are kept, in typed arrays, so 10,000-node traces fit.
'use strict';

(function () {
  const gv = window.gv;
  const $ = (id) => document.getElementById(id);
  const K = { up: 0, down: 1, link_up: 2, link_down: 3, deliver: 4, graft: 5, prune: 6 };
  const MAX_EVENTS = 20000000;

  class Events {
    constructor() { this.n = 0; this.cap = 0; this.grow(1 << 16); }
    grow(cap) {
      const copy = (Old, T) => { const a = new T(cap); if (Old) a.set(Old.subarray(0, this.n)); return a; };
      this.t = copy(this.t, Float64Array); this.k = copy(this.k, Uint8Array);
      this.a = copy(this.a, Int32Array); this.b = copy(this.b, Int32Array);
      this.o = copy(this.o, Int32Array); this.s = copy(this.s, Float64Array);
      this.cap = cap;
    }
    push(t, k, a, b, o, s) {
      if (this.n === this.cap) this.grow(this.cap * 2);
      const i = this.n++;
      this.t[i] = t; this.k[i] = k; this.a[i] = a; this.b[i] = b; this.o[i] = o; this.s[i] = s;
    }
  }

  const rp = {
    ev: null, tmax: 0, cursor: 0, now: 0, playing: false, speed: 1, lastFrame: 0,
    status: new Map(),   // node -> 'alive' | 'failed'
    active: new Map(),   // node -> Set(peer)
    eager: new Map(),    // node -> Set(peer) (the shared tree, from GRAFT/PRUNE)
    bcast: null,         // the newest broadcast: {origin, seq, have: Set}
    bcasts: new Map(),   // "origin:seq" -> the same, for the last 256 broadcasts
    dirty: true, lastSync: 0, truncated: false, skipped: 0, name: '',
  };

  function setOf(map, id) { let s = map.get(id); if (!s) { s = new Set(); map.set(id, s); } return s; }

  async function load(file) {
    gv.enterReplay();
    $('replay-bar').hidden = false;
    $('rp-info').textContent = `reading ${file.name}…`;
    const ev = new Events();
    let skipped = 0, lines = 0, truncated = false;
    const reader = file.stream().getReader();
    const decoder = new TextDecoder();
    let rest = '';
    const handle = (line) => {
      if (!line) return;
      lines++;
      // Message events are most of a trace; only GRAFT and PRUNE are kept.
      if (line.includes('"k":"msg"') && !line.includes('"GRAFT"') && !line.includes('"PRUNE"')) return;
      if (line.includes('"k":"lost"')) return;
      let e;
      try { e = JSON.parse(line); } catch (err) { skipped++; return; }
      if (ev.n >= MAX_EVENTS) { truncated = true; return; }
      const t = e.t / 1e6;
      switch (e.k) {
        case 'up': ev.push(t, K.up, e.node, 0, 0, 0); break;
        case 'down': ev.push(t, K.down, e.node, 0, 0, 0); break;
        case 'link_up': ev.push(t, K.link_up, e.node, e.peer, 0, 0); break;
        case 'link_down': ev.push(t, K.link_down, e.node, e.peer, 0, 0); break;
        case 'deliver': ev.push(t, K.deliver, e.node, e.from === undefined ? 0 : e.from, e.origin, e.seq); break;
        case 'msg':
          if (e.type === 'GRAFT') ev.push(t, K.graft, e.from, e.to, 0, 0);
          else if (e.type === 'PRUNE') ev.push(t, K.prune, e.from, e.to, 0, 0);
          break;
        case 'peer_down': break;
        default: skipped++;
      }
    };
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
      const parts = rest.split('\n');
      rest = parts.pop();
      for (const line of parts) handle(line.trim());
      $('rp-info').textContent = `reading ${file.name}… ${lines.toLocaleString()} lines`;
    }
    handle((rest + decoder.decode()).trim());
    if (ev.n === 0) {
      gv.showBanner(`${file.name}: no trace events found (expected the JSON lines of grapevine sim --trace)`);
      $('rp-info').textContent = '';
      return;
    }
    rp.ev = ev; rp.tmax = ev.t[ev.n - 1]; rp.truncated = truncated; rp.skipped = skipped; rp.name = file.name;
    if (skipped) gv.showBanner(`${file.name}: ${skipped} lines were not trace events and were skipped`);
    // Lay the graph out once on the trace's final topology, so nodes keep
    // one place for the whole playback.
    reset();
    advance(rp.tmax, false);
    gv.syncGraph(model());
    reset();
    gv.spread.manual = true;
    gv.spread.holders = () => (rp.bcast ? rp.bcast.have : new Set());
    gv.spread.liveCount = () => { let c = 0; for (const s of rp.status.values()) if (s === 'alive') c++; return c; };
    seek(0);
    play(true);
  }

  function reset() {
    rp.cursor = 0; rp.now = 0;
    rp.status = new Map(); rp.active = new Map(); rp.eager = new Map();
    rp.bcast = null; rp.bcasts = new Map(); rp.dirty = true;
    gv.cy.nodes('.has-write').removeClass('has-write');
  }

  // Applies events up to time `t`; `animate` pulses the deliveries on the way.
  function advance(t, animate) {
    const ev = rp.ev;
    let pulses = 0;
    const lit = [];
    while (rp.cursor < ev.n && ev.t[rp.cursor] <= t) {
      const i = rp.cursor++;
      const a = ev.a[i], b = ev.b[i];
      switch (ev.k[i]) {
        case K.up: rp.status.set(a, 'alive'); rp.active.set(a, new Set()); rp.eager.set(a, new Set()); rp.dirty = true; break;
        case K.down: rp.status.set(a, 'failed'); rp.active.delete(a); rp.eager.delete(a); rp.dirty = true; break;
        case K.link_up: setOf(rp.active, a).add(b); setOf(rp.eager, a).add(b); rp.dirty = true; break;
        case K.link_down: setOf(rp.active, a).delete(b); setOf(rp.eager, a).delete(b); rp.dirty = true; break;
        case K.graft: // the sender moved the receiver to eager, the receiver does the same
          if (rp.active.get(a) && rp.active.get(a).has(b)) setOf(rp.eager, a).add(b);
          if (rp.active.get(b) && rp.active.get(b).has(a)) setOf(rp.eager, b).add(a);
          rp.dirty = true; break;
        case K.prune:
          setOf(rp.eager, a).delete(b); setOf(rp.eager, b).delete(a); rp.dirty = true; break;
        case K.deliver: {
          const origin = ev.o[i], seq = ev.s[i];
          const key = origin + ':' + seq;
          let entry = rp.bcasts.get(key);
          if (!entry) {
            // Broadcasts may overlap: each keeps its own deliveries, the newest is shown.
            entry = { origin, seq, have: new Set() };
            rp.bcasts.set(key, entry);
            if (rp.bcasts.size > 256) rp.bcasts.delete(rp.bcasts.keys().next().value);
            rp.bcast = entry;
            if (animate) {
              gv.cy.nodes('.has-write').removeClass('has-write');
              const w = { origin: String(origin), seq, keys: [], label: `n${origin} #${seq}` };
              gv.spread.write = w;
              gv.spread.lit = new Set();
              gv.spread.history.unshift(w);
              gv.spread.history.length = Math.min(gv.spread.history.length, 12);
              $('write-card').hidden = false;
            }
          }
          entry.have.add(String(a));
          if (animate && entry === rp.bcast) {
            lit.push(String(a));
            if (b && b !== a && pulses++ < 300) lit.push([String(b), String(a)]);
          }
          break;
        }
      }
    }
    rp.now = t;
    return lit;
  }

  function model() {
    const nodes = new Map();
    for (const [id, st] of rp.status) nodes.set(String(id), { id: String(id), label: 'n' + id, status: st, self: false });
    const edges = new Map();
    for (const [a, peers] of rp.active) {
      const eager = rp.eager.get(a) || new Set();
      for (const b of peers) {
        if (rp.status.get(b) !== 'alive') continue;
        const [x, y] = a < b ? [a, b] : [b, a];
        const id = `a:${x}|${y}`;
        const isEager = eager.has(b) || (rp.eager.get(b) || new Set()).has(a);
        const prev = edges.get(id);
        edges.set(id, { id, source: String(x), target: String(y), cls: isEager || (prev && prev.cls === 'eager') ? 'eager' : 'lazy' });
      }
    }
    return { nodes, edges };
  }

  function sync(force) {
    const nowMs = performance.now();
    if (!rp.dirty && !force) return;
    // Big graphs: at most a few redraws of the topology per second.
    const gap = rp.status.size > 2000 ? 1000 : rp.status.size > 300 ? 300 : 0;
    if (!force && nowMs - rp.lastSync < gap) return;
    rp.lastSync = nowMs;
    rp.dirty = false;
    gv.syncGraph(model());
    if (rp.bcast && gv.spread.write) {
      gv.cy.batch(() => { for (const id of rp.bcast.have) gv.cy.getElementById(id).addClass('has-write'); });
    }
  }

  function renderStatus() {
    $('rp-time').textContent = `${rp.now.toFixed(3)} s / ${rp.tmax.toFixed(3)} s`;
    $('rp-seek').value = String(rp.tmax ? Math.round((1000 * rp.now) / rp.tmax) : 0);
    const alive = [...rp.status.values()].filter((s) => s === 'alive').length;
    $('rp-info').textContent = `${rp.name}: ${rp.status.size.toLocaleString()} nodes, ${alive.toLocaleString()} alive, ` +
      `${rp.ev.n.toLocaleString()} events${rp.truncated ? ' (truncated)' : ''}`;
    if (gv.spread.write && rp.bcast) gv.renderWriteCard(rp.bcast.have);
    if (rp.countsAt !== rp.lastSync) { rp.countsAt = rp.lastSync; gv.renderCounts(); }
  }

  function seek(t) {
    if (t < rp.now) reset();
    advance(t, false);
    sync(true);
    renderStatus();
    gv.renderListNow();
  }

  function frame(ts) {
    if (!rp.playing) return;
    const dt = rp.lastFrame ? (ts - rp.lastFrame) / 1000 : 0;
    rp.lastFrame = ts;
    const target = Math.min(rp.tmax, rp.now + dt * rp.speed);
    const lit = advance(target, true);
    sync(false);
    gv.cy.batch(() => {
      for (const x of lit) {
        if (Array.isArray(x)) gv.pulseEdge(x[0], x[1]);
        else gv.lightNode(x);
      }
    });
    renderStatus();
    if (rp.dirty === false && lit.length === 0 && Math.floor(ts / 500) !== Math.floor((ts - dt * 1000) / 500)) gv.renderListNow();
    if (rp.now >= rp.tmax) { play(false); sync(true); gv.renderListNow(); return; }
    requestAnimationFrame(frame);
  }

  function play(on) {
    rp.playing = on;
    $('rp-play').textContent = on ? '❚❚ Pause' : '▶ Play';
    if (on) { rp.lastFrame = 0; requestAnimationFrame(frame); }
  }

  $('trace-file').addEventListener('change', (e) => {
    const f = e.target.files && e.target.files[0];
    e.target.value = '';
    if (f) load(f).catch((err) => gv.showBanner(`Cannot replay ${f.name}: ${err.message}`));
  });
  $('rp-play').addEventListener('click', () => { if (rp.ev) { if (rp.now >= rp.tmax) seek(0); play(!rp.playing); } });
  $('rp-speed').addEventListener('change', (e) => { rp.speed = Number(e.target.value); });
  $('rp-seek').addEventListener('input', (e) => { if (rp.ev) { play(false); seek((Number(e.target.value) / 1000) * rp.tmax); } });
  $('rp-exit').addEventListener('click', () => {
    play(false);
    rp.ev = null;
    $('replay-bar').hidden = true;
    gv.exitReplay();
  });

  window.gvReplay = {
    listItems() {
      return [...rp.status].map(([id, st]) => ({ id: String(id), name: 'n' + id, status: st, tags: {}, self: false }));
    },
    rerender() { sync(true); },
    renderPanel(id) {
      const n = Number(id);
      $('panel').hidden = false;
      $('p-name').replaceChildren(gv.el('span', { class: 'dot ' + (rp.status.get(n) || 'unknown') }), 'n' + id);
      const act = [...(rp.active.get(n) || [])], eg = rp.eager.get(n) || new Set();
      const chips = (ids) => {
        const d = gv.el('div');
        if (!ids.length) d.append(gv.el('span', { class: 'note' }, 'none'));
        for (const p of ids) d.append(gv.el('span', { class: 'chip' + (eg.has(p) ? ' eager' : ''), onclick: () => gv.select(String(p), true) }, 'n' + p));
        return d;
      };
      $('p-body').replaceChildren(
        gv.el('h3', null, 'Simulated node'),
        gv.el('p', null, `status ${rp.status.get(n) || 'unknown'} at ${rp.now.toFixed(3)} s`),
        gv.el('h3', null, `Active view (${act.length}) · tree links outlined`), chips(act),
        gv.el('h3', null, 'Current broadcast'),
        gv.el('p', null, rp.bcast ? `n${rp.bcast.origin} #${rp.bcast.seq}: ${rp.bcast.have.has(id) ? 'delivered' : 'not yet'}` : 'none'));
    },
    state() { return { now: rp.now, tmax: rp.tmax, nodes: rp.status.size, events: rp.ev ? rp.ev.n : 0 }; },
  };
})();
