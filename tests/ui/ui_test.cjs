#!/usr/bin/env node
// The web visualizer's browser test (issue 7): five real `grapevine agent`
// processes on 127.0.0.1, Debian's chromium (headless) driven by
// playwright-core, the page served by node1 at /ui/.
//
//   node ui_test.cjs --grapevine BIN --viz-dir DIR --out DIR
//
// --viz-dir holds the node_modules that `npm ci` installed at build time
// (playwright-core comes from there); --out receives the screenshot
// (ui-cluster.png) and, on failure, the agents' logs stay in the temp dir it names.
// Every wait is a bounded poll with a deadline; a watchdog ends the run.
'use strict';

const { spawn } = require('child_process');
const { createRequire } = require('module');
const dgram = require('dgram');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name} (usage: ui_test.cjs --grapevine BIN --viz-dir DIR --out DIR)`);
  return process.argv[i + 1];
}
const GRAPEVINE = path.resolve(arg('--grapevine'));
const VIZ_DIR = path.resolve(arg('--viz-dir'));
const OUT_DIR = path.resolve(arg('--out'));
const { chromium } = createRequire(path.join(VIZ_DIR, 'package.json'))('playwright-core');

const NODES = 5;
const FAILURE_DEADLINE_MS = 6000;  // kill -9 -> failed in the page: ~1 s detection + broadcast + 250 ms flush, with margin
const WATCHDOG_MS = 240000;

const agents = [];
let browserContext = null;
let baseDir = null;
let userDataDir = null;
let failed = false;

function log(...a) { console.log(`[ui-test ${new Date().toISOString().slice(11, 23)}]`, ...a); }

// ---------------------------------------------------------------- helpers

const usedPorts = new Set();
async function freePort(udp) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise((resolve, reject) => {
      if (udp) {
        const s = dgram.createSocket('udp4');
        s.on('error', reject);
        s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
      } else {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
      }
    });
    if (!usedPorts.has(port)) { usedPorts.add(port); return port; }
  }
  throw new Error('no free loopback port after 100 attempts');
}

function request(method, address, urlPath, body) {
  return new Promise((resolve, reject) => {
    const [host, port] = address.split(':');
    const req = http.request({ host, port: Number(port), method, path: urlPath, timeout: 5000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${address}${urlPath}: timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
async function getJson(address, urlPath) {
  const res = await request('GET', address, urlPath);
  if (res.status !== 200) throw new Error(`GET ${address}${urlPath}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
  return JSON.parse(res.body);
}

// Polls `probe` (async; returns a truthy value when done) until it succeeds or the deadline passes.
async function until(what, timeoutMs, probe, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function check(cond, message) {
  if (!cond) throw new Error('check failed: ' + message);
  log('ok:', message);
}

// ---------------------------------------------------------------- the cluster

async function startAgent(i, seed) {
  const name = `node${i}`;
  const a = {
    name, dataDir: path.join(baseDir, name), peer: `127.0.0.1:${await freePort(false)}`,
    http: `127.0.0.1:${await freePort(false)}`, dns: `127.0.0.1:${await freePort(true)}`,
    zone: i % 2 === 0 ? 'us' : 'eu', proc: null, exited: null,
  };
  fs.mkdirSync(a.dataDir, { recursive: true });
  a.logPath = path.join(a.dataDir, 'agent.log');
  const args = ['agent', '--name', name, '--data-dir', a.dataDir, '--bind', a.peer, '--http', a.http, '--dns', a.dns,
    '--cluster', 'ui-test', '--durability', 'none', '--log-level', 'info', '--wal-segment-bytes', '8388608',
    '--tag', `zone=${a.zone}`, '--tag', `rack=r${i}`];
  if (seed) args.push('--join', seed.peer);
  const out = fs.openSync(a.logPath, 'a');
  a.proc = spawn(GRAPEVINE, args, { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  a.proc.on('exit', (code, signal) => { a.exited = { code, signal }; });
  agents.push(a);
  await until(`${name} to serve HTTP`, 30000, async () => (await request('GET', a.http, '/v1/status')).status === 200);
  return a;
}

async function stopAgents() {
  for (const a of agents) if (!a.exited && a.proc) a.proc.kill('SIGTERM');
  try {
    await until('the agents to leave', 15000, async () => agents.every((a) => a.exited));
  } catch (err) {
    for (const a of agents) if (!a.exited && a.proc) { log(`${a.name} did not stop; SIGKILL`); a.proc.kill('SIGKILL'); }
    await until('the agents to die', 5000, async () => agents.every((a) => a.exited)).catch(() => {});
  }
}

// Unordered pairs of a kind, as drawn: an active link once, a tree (eager) link if either side has it eager.
function expectedPairs(topology, members) {
  const status = new Map(members.map((m) => [m.id, m.status]));
  const known = new Set(topology.nodes.map((n) => n.id));
  for (const m of members) known.add(m.id);
  const dead = (id) => status.get(id) === 'failed' || status.get(id) === 'left';
  const active = new Map();
  const passive = new Set();
  for (const n of topology.nodes) {
    if (dead(n.id)) continue;
    for (const p of n.active) {
      if (!known.has(p)) continue;
      const key = [n.id, p].sort().join('|');
      const eager = n.eager.includes(p);
      const lazy = n.lazy.includes(p);
      const prev = active.get(key) || { eager: false, lazy: false };
      active.set(key, { eager: prev.eager || eager, lazy: prev.lazy || lazy });
    }
    for (const p of n.passive) if (known.has(p)) passive.add(`${n.id}>${p}`);
  }
  const kinds = new Map();
  for (const [k, v] of active) kinds.set(k, v.eager ? 'eager' : v.lazy ? 'lazy' : 'active');
  return { kinds, passive };
}

function drawnPairs(state) {
  const kinds = new Map();
  const passive = new Set();
  for (const e of state.edges) {
    if (e.kind === 'passive') passive.add(`${e.from}>${e.to}`);
    else kinds.set([e.from, e.to].sort().join('|'), e.kind);
  }
  return { kinds, passive };
}

function sameMap(a, b) {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
function sameSet(a, b) { return a.size === b.size && [...a].every((x) => b.has(x)); }

// ---------------------------------------------------------------- the test

async function main() {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'grapevine-ui-test-'));
  log('agents in', baseDir);

  const seed = await startAgent(1, null);
  for (let i = 2; i <= NODES; i++) await startAgent(i, seed);
  const viewer = agents[0];
  await until('5 alive members at node1', 30000, async () => {
    const m = await getJson(viewer.http, '/v1/members');
    return m.length === NODES && m.every((x) => x.status === 'alive');
  });
  await until('overlay records of all 5 nodes at node1', 30000, async () => (await getJson(viewer.http, '/v1/topology')).nodes.length === NODES);
  const members = await getJson(viewer.http, '/v1/members');
  const idOf = new Map(members.map((m) => [m.name, m.id]));

  // Served from the binary: the page and cytoscape's dist file.
  const index = await request('GET', viewer.http, '/ui/');
  check(index.status === 200 && /text\/html/.test(index.headers['content-type']) && index.body.includes('vendor/cytoscape.min.js'),
    'GET /ui/ serves the page');
  const lib = await request('GET', viewer.http, '/ui/vendor/cytoscape.min.js');
  check(lib.status === 200 && lib.body.length > 100000, `GET /ui/vendor/cytoscape.min.js serves cytoscape (${lib.body.length} bytes)`);
  check((await request('GET', viewer.http, '/ui/nope.js')).status === 404, 'an unknown /ui/ file is a 404');

  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'grapevine-ui-chromium-'));
  browserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
  const page = browserContext.pages()[0] || (await browserContext.newPage());
  const pageErrors = [];
  page.on('pageerror', (err) => { pageErrors.push('pageerror: ' + err.message); log('PAGE ERROR', err.message); });
  page.on('console', (msg) => { if (msg.type() === 'error') { pageErrors.push('console: ' + msg.text()); log('CONSOLE ERROR', msg.text()); } });
  page.setDefaultTimeout(20000);
  const state = () => page.evaluate(() => window.gv.state());

  await page.goto(`http://${viewer.http}/ui/`, { waitUntil: 'load', timeout: 30000 });

  // 1. The five nodes, listed and drawn.
  await until('the page to list 5 nodes', 20000, async () => (await page.locator('#node-list li').count()) === NODES);
  const listed = await page.locator('#node-list li .name').allTextContents();
  check(JSON.stringify(listed) === JSON.stringify(['node1', 'node2', 'node3', 'node4', 'node5']), `the list shows ${listed.join(', ')}`);
  const s0 = await state();
  check(s0.nodes.length === NODES && s0.nodes.every((n) => n.status === 'alive'), 'the graph draws 5 alive nodes');
  check(s0.self === idOf.get('node1'), 'the page knows it is node1\'s view');

  // 2. The edges are /v1/topology's (active links, eager vs lazy).
  let lastDiff = '';
  await until('the drawn edges to match /v1/topology', 20000, async () => {
    const topo = await getJson(viewer.http, '/v1/topology');
    const want = expectedPairs(topo, await getJson(viewer.http, '/v1/members'));
    const got = drawnPairs(await state());
    lastDiff = `want ${JSON.stringify([...want.kinds])} got ${JSON.stringify([...got.kinds])}`;
    return want.kinds.size > 0 && sameMap(want.kinds, got.kinds);
  }, 250).catch((err) => { throw new Error(err.message + ': ' + lastDiff); });
  const drawn = drawnPairs(await state());
  check([...drawn.kinds.values()].includes('eager'), `tree edges are drawn (${[...drawn.kinds.values()].join(', ')})`);

  // 3. Passive views on demand.
  await page.locator('#show-passive').check();
  await until('passive edges to match /v1/topology', 20000, async () => {
    const want = expectedPairs(await getJson(viewer.http, '/v1/topology'), await getJson(viewer.http, '/v1/members'));
    const got = drawnPairs(await state());
    return sameSet(want.passive, got.passive) && sameMap(want.kinds, got.kinds);
  }, 250);
  log(`passive edges drawn: ${drawnPairs(await state()).passive.size}`);
  await page.locator('#show-passive').uncheck();
  await until('passive edges to go', 10000, async () => drawnPairs(await state()).passive.size === 0);
  check(true, 'passive views toggle on and off');

  // 4. Search by tag and by name.
  await page.locator('#search').fill('zone=us');
  await until('the tag search', 5000, async () => (await page.locator('#node-list li').count()) === 2);
  check(JSON.stringify(await page.locator('#node-list li .name').allTextContents()) === '["node2","node4"]', 'searching zone=us lists node2 and node4');
  await page.locator('#search').fill('node3');
  await until('the name search', 5000, async () => (await page.locator('#node-list li').count()) === 1);
  await page.locator('#search').fill('');
  await until('the full list', 5000, async () => (await page.locator('#node-list li').count()) === NODES);

  // 5. A node's panel, with the WAL and snapshot figures fetched from that agent.
  await page.locator('#node-list li', { hasText: 'node2' }).click();
  let panelText = '';
  await until('node2\'s panel with its WAL figures', 15000, async () => {
    const text = await page.locator('#panel').innerText();
    panelText = text;
    return !(await page.locator('#panel').isHidden()) && text.includes(idOf.get('node2')) && /durability/i.test(text) &&
      /zone/.test(text) && /active view/i.test(text) && /snapshot every/i.test(text) && /Applied vector/i.test(text);
  }, 200).catch((err) => { throw new Error(err.message + '; the panel says: ' + panelText.replace(/\n/g, ' | ')); });
  check(true, 'node2\'s panel shows id, tags, applied vector, WAL and snapshot figures, views');

  // 6. A write on node2 spreads: animated, counted up to 5/5.
  const key = 'ui-test/spread';
  const put = await request('PUT', agents[1].http, `/v1/kv/${key}`, 'hello');
  check(put.status === 200, `PUT /v1/kv/${key} on node2`);
  const t0 = Date.now();
  await until('the write to be counted at 5/5', 30000, async () => {
    const w = (await state()).write;
    return w && w.keys && w.keys.includes(key) && w.have === NODES && w.live === NODES && w.lit === NODES;
  }, 200);
  const w = (await state()).write;
  check(w.origin === idOf.get('node2'), 'the animated write starts from its origin node2');
  check(w.pulses >= 1, `the write was animated along ${w.pulses} edge(s), all 5 nodes lit, after ${Date.now() - t0} ms`);
  check((await page.locator('#write-count').innerText()).trim() === `${NODES}/${NODES}`, 'the write card says 5/5');

  // 7. kill -9 of node4: failed in the page within the failure-detection time.
  const victim = agents[3];
  const victimId = idOf.get('node4');
  const tKill = Date.now();
  process.kill(victim.proc.pid, 'SIGKILL');
  await until(`node4 to be failed in the page within ${FAILURE_DEADLINE_MS} ms`, FAILURE_DEADLINE_MS, async () => {
    const st = await state();
    const n = st.nodes.find((x) => x.id === victimId);
    const li = await page.locator(`#node-list li[data-id="${victimId}"]`).getAttribute('data-status');
    return n && n.status === 'failed' && li === 'failed';
  }, 50);
  check(true, `node4 turned failed in the page ${Date.now() - tKill} ms after kill -9`);
  await until('no drawn active edge from node4\'s stale record', 20000, async () => {
    const st = await state();
    return st.edges.filter((e) => e.kind !== 'passive' && (e.from === victimId || e.to === victimId)).length === 0;
  }, 250);
  check(true, 'the overlay healed around node4 in the page');
  await until('the live count to drop to 4', 5000, async () => (await state()).write.live === NODES - 1);

  // 8. Screenshot artefact, checked non-blank (decoded by the browser: distinct colours).
  await page.locator('#node-list li', { hasText: 'node1' }).click();
  await page.waitForTimeout(600);  // let the panel and the node transitions settle for the picture (not a synchronisation)
  const shot = path.join(OUT_DIR, 'ui-cluster.png');
  const png = await page.screenshot({ path: shot });
  check(png.length > 10000 && png.subarray(1, 4).toString() === 'PNG', `screenshot saved: ${shot} (${png.length} bytes)`);
  const pixels = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return { width: c.width, height: c.height, colours: colours.size };
  }, png.toString('base64'));
  check(pixels.width === 1400 && pixels.colours > 200, `the screenshot is not blank (${pixels.width}x${pixels.height}, ${pixels.colours} distinct colours sampled)`);

  // 9. Replay of a `grapevine sim --trace` file, picked through the file input.
  const tracePath = path.join(baseDir, 'sim-trace.jsonl');
  const sim = spawn(GRAPEVINE, ['sim', '--nodes', '40', '--seed', '7', '--scenario', 'single-sender', '--broadcasts', '3',
    '--trace', tracePath, '--json'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const simExit = new Promise((resolve) => sim.on('exit', (code) => resolve(code)));
  const simCode = await Promise.race([simExit, new Promise((r) => setTimeout(() => r('timeout'), 60000))]);
  if (simCode !== 0) { sim.kill('SIGKILL'); throw new Error(`grapevine sim ended with ${simCode}`); }
  const traceLines = fs.readFileSync(tracePath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const lastBroadcast = traceLines.filter((e) => e.k === 'deliver').pop();
  const lastDeliveries = new Set(traceLines.filter((e) => e.k === 'deliver' && e.origin === lastBroadcast.origin &&
    e.seq === lastBroadcast.seq).map((e) => e.node));
  await page.locator('#trace-file').setInputFiles(tracePath);
  await page.locator('#rp-speed').selectOption('100');
  await until('the replay to reach the end of the trace', 60000, async () => {
    const r = await page.evaluate(() => window.gvReplay.state());
    return r.events > 0 && r.now >= r.tmax;
  }, 200);
  const rs = await state();
  check(rs.nodes.length === 40 && rs.nodes.every((n) => n.status === 'alive'), `the replay draws the trace's 40 nodes (${rs.nodes.length})`);
  check(rs.edges.length >= 40 && rs.edges.some((e) => e.kind === 'eager'), `the replay draws its active views with tree links (${rs.edges.length} links)`);
  check(rs.write && rs.write.origin === String(lastBroadcast.origin) && rs.write.have === lastDeliveries.size && rs.write.pulses > 0,
    `the replay animated the last broadcast: ${rs.write && rs.write.have}/${rs.write && rs.write.live} delivered, as the trace says (${lastDeliveries.size})`);
  await page.screenshot({ path: path.join(OUT_DIR, 'ui-replay.png') });
  await page.locator('#rp-exit').click();
  await until('the live view back after the replay', 15000, async () => {
    const st = await state();
    return st.nodes.length === NODES && st.nodes.find((n) => n.id === victimId).status === 'failed';
  }, 200);
  check(true, 'back to the live cluster after the replay');

  // 10. No page errors all along.
  check(pageErrors.length === 0, `no page errors (${pageErrors.join(' | ') || 'none'})`);
}

const watchdog = setTimeout(() => {
  log(`watchdog: the test did not finish within ${WATCHDOG_MS} ms`);
  for (const a of agents) if (!a.exited && a.proc) a.proc.kill('SIGKILL');
  process.exit(1);
}, WATCHDOG_MS);

main()
  .catch((err) => {
    failed = true;
    log('FAILED:', err.stack || err.message);
  })
  .finally(async () => {
    if (browserContext) await browserContext.close().catch((err) => log('closing chromium:', err.message));
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    await stopAgents();
    for (const a of agents) {
      const killed = a === agents[3];
      const bad = !killed && a.exited && a.exited.signal !== null && a.exited.signal !== 'SIGTERM';
      if (bad || (!killed && a.exited && a.exited.code !== 0 && a.exited.code !== null)) {
        failed = true;
        log(`${a.name} ended badly: ${JSON.stringify(a.exited)}`);
      }
    }
    if (failed) {
      for (const a of agents) {
        try {
          const text = fs.readFileSync(a.logPath, 'utf8').split('\n').slice(-25).join('\n');
          log(`---- last lines of ${a.logPath}\n${text}`);
        } catch (err) { log(`no log for ${a.name}: ${err.message}`); }
      }
      log('agent data kept in', baseDir);
    } else if (baseDir) {
      fs.rmSync(baseDir, { recursive: true, force: true });
    }
    clearTimeout(watchdog);
    log(failed ? 'FAIL' : 'PASS');
    process.exit(failed ? 1 : 0);
  });
