/// <reference lib="dom" />
// The dashboard page's script (bundled by esbuild when the daemon first serves
// it). It reads the daemon's event stream (/ui/events) with fetch, so the API
// token can ride in a header, and redraws the page from two inputs: the node's
// state and the activations of the last minutes.

import type { ActivationSummary, DashboardState } from '../hub.js';

const PATHS = ['cold', 'restore', 'warm', 'none'] as const;
/** latency buckets (upper bounds, ms): 1 ms … 2 min */
const BUCKETS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000];

const model = {
  state: undefined as DashboardState | undefined,
  activations: [] as ActivationSummary[],
  windowMs: 10 * 60_000,
  /** server clock − page clock */
  skewMs: 0,
};

const token = new URLSearchParams(location.hash.slice(1)).get('token');
const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};

const $ = (id: string): HTMLElement => document.getElementById(id)!;
const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const mib = (b: number): string => `${(b / 1048576).toFixed(b < 10 * 1048576 ? 1 : 0)} MiB`;
const ms = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(x >= 10_000 ? 1 : 2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`);

// ---- event stream -------------------------------------------------------

async function stream(): Promise<void> {
  for (;;) {
    try {
      const res = await fetch('/ui/events', { headers, cache: 'no-store' });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      setConn(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          onEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch {
      // daemon restarting or gone: try again shortly
    }
    setConn(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onEvent(block: string): void {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (data.length === 0) return;
  const msg = JSON.parse(data.join('\n')) as unknown;
  if (event === 'hello') {
    const h = msg as { windowMs: number; now: number; activations: ActivationSummary[]; state?: DashboardState };
    model.windowMs = h.windowMs;
    model.skewMs = h.now - Date.now();
    model.activations = h.activations;
    if (h.state) model.state = h.state;
  } else if (event === 'state') {
    model.state = msg as DashboardState;
  } else if (event === 'activation') {
    model.activations.push(msg as ActivationSummary);
  }
  schedule();
}

function setConn(live: boolean): void {
  const el = $('conn');
  el.className = `conn ${live ? 'live' : 'down'}`;
  el.textContent = live ? 'live' : 'reconnecting…';
}

let pending = false;
function schedule(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

// ---- drawing -----------------------------------------------------------

function render(): void {
  const now = Date.now() + model.skewMs;
  model.activations = model.activations.filter((a) => a.at >= now - model.windowMs).slice(-2000);
  const st = model.state;
  if (st) {
    renderSummary(st);
    renderInstances(st);
    renderMemory(st);
    renderCapacity(st);
    renderSnapshots(st);
  }
  renderMix(now);
  renderLatency();
  renderActivations();
}

function renderSummary(st: DashboardState): void {
  const n = st.node;
  const queued = Object.values(n.queues).reduce((a, b) => a + b, 0);
  $('summary').textContent = `${n.instances.length} instances · ${queued} queued · memory ${mib(n.memoryUsedBytes)} of ${mib(n.memoryBudgetBytes)} · starts: ${n.counters.starts.cold ?? 0} cold, ${n.counters.starts.restore ?? 0} restore`;
}

function renderInstances(st: DashboardState): void {
  const samples = new Map(st.vms.map((v) => [v.vmId, v]));
  const byFn = new Map<string, DashboardState['node']['instances']>();
  for (const i of st.node.instances) byFn.set(i.fn, [...(byFn.get(i.fn) ?? []), i]);
  for (const f of Object.keys(st.node.queues)) if (!byFn.has(f)) byFn.set(f, []);
  const rows = [...byFn.keys()].sort().map((fn) => {
    const chips = byFn
      .get(fn)!
      .map((i) => {
        const s = samples.get(i.id);
        const mem = s ? ` · ${mib(s.pssBytes)} PSS` : '';
        return `<span class="vm s-${esc(i.state)}" data-vm-id="${esc(i.id)}" data-fn="${esc(fn)}" data-state="${esc(i.state)}" title="${esc(i.id)}: ${i.invocations} invocations${mem}">${esc(i.state)}${mem}</span>`;
      })
      .join('');
    const q = st.node.queues[fn] ?? 0;
    return `<div class="fnrow" data-function="${esc(fn)}"><div class="name">${esc(fn)}</div>${chips}${q ? `<span class="muted">${q} queued</span>` : ''}</div>`;
  });
  $('instances').innerHTML = rows.length ? rows.join('') : '<div class="muted">no instances</div>';
}

/** "none": the request never ran on an instance (refused, or its start failed before it ran; an init failure is shown with its start's path). */
const pathLabel = (p: string): string => (p === 'none' ? 'not run' : p);

function legend(): string {
  return `<div class="legend">${PATHS.map((p) => `<span><i class="p-${p}"></i>${pathLabel(p)}</span>`).join('')}</div>`;
}

function renderMix(now: number): void {
  const minutes = Math.max(1, Math.round(model.windowMs / 60_000));
  const start = now - minutes * 60_000;
  const bins = Array.from({ length: minutes }, (): Record<string, number> => ({ cold: 0, restore: 0, warm: 0, none: 0 }));
  let errors = 0;
  for (const a of model.activations) {
    const b = Math.min(minutes - 1, Math.floor((a.at - start) / 60_000));
    if (b < 0) continue;
    bins[b]![a.startPath] = (bins[b]![a.startPath] ?? 0) + 1;
    if (a.status !== 'success') errors++;
  }
  const max = Math.max(1, ...bins.map((b) => PATHS.reduce((s, p) => s + (b[p] ?? 0), 0)));
  const cols = bins
    .map((b, i) => {
      const parts = PATHS.map((p) => (b[p] ? `<div class="p-${p}" style="height:${((b[p] / max) * 140).toFixed(1)}px" title="${b[p]} ${p}"></div>` : '')).join('');
      return `<div class="col" title="minute ${i - minutes + 1}">${parts}</div>`;
    })
    .join('');
  const n = model.activations.length;
  const pct = (p: string): string => (n ? `${((model.activations.filter((a) => a.startPath === p).length / n) * 100).toFixed(0)} %` : '–');
  $('mix').innerHTML = `${legend()}<div class="cols">${cols}</div><div class="axis"><span>−${minutes} min</span><span>max ${max}/min</span><span>now</span></div>
    <div class="muted">${n} activations in the window: ${PATHS.map((p) => `${pathLabel(p)} ${pct(p)}`).join(', ')}; ${errors} not successful</div>`;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : NaN;
}

function renderLatency(): void {
  const by: Record<string, number[]> = { cold: [], restore: [], warm: [] };
  for (const a of model.activations) if (a.status === 'success' && by[a.startPath]) by[a.startPath]!.push(a.totalMs);
  const counts = BUCKETS.map((ub, i) => {
    const lb = i === 0 ? 0 : BUCKETS[i - 1]!;
    const c: Record<string, number> = {};
    for (const p of Object.keys(by)) c[p] = by[p]!.filter((x) => x > lb && x <= ub).length;
    return c;
  });
  const max = Math.max(1, ...counts.flatMap((c) => Object.values(c)));
  const cols = counts
    .map((c, i) => {
      const parts = Object.keys(by)
        .map((p) => `<div class="p-${p}" style="height:${(((c[p] ?? 0) / max) * 140).toFixed(1)}px;width:33%;display:inline-block;vertical-align:bottom" title="${c[p]} ${p} ≤ ${ms(BUCKETS[i]!)}"></div>`)
        .join('');
      return `<div class="col" style="flex-direction:row;align-items:flex-end">${parts}</div>`;
    })
    .join('');
  const stats = Object.entries(by)
    .map(([p, xs]) => {
      const s = [...xs].sort((a, b) => a - b);
      return `<tr><td><span class="badge p-${p}">${p}</span></td><td class="num">${s.length}</td><td class="num">${s.length ? ms(quantile(s, 0.5)) : '–'}</td><td class="num">${s.length ? ms(quantile(s, 0.99)) : '–'}</td></tr>`;
    })
    .join('');
  $('latency').innerHTML = `${legend()}<div class="cols">${cols}</div><div class="cols" style="height:auto;border:0">${BUCKETS.map((b) => `<div class="col axis">${[1, 10, 100, 1000, 10000, 120000].includes(b) ? ms(b) : ''}</div>`).join('')}</div>
    <table><tr><th>start path</th><th class="num">n</th><th class="num">p50</th><th class="num">p99</th></tr>${stats}</table>`;
}

function renderMemory(st: DashboardState): void {
  const n = st.node;
  const pct = n.memoryBudgetBytes ? Math.min(100, (n.memoryUsedBytes / n.memoryBudgetBytes) * 100) : 0;
  const fnOf = new Map(n.instances.map((i) => [i.id, i.fn]));
  const rows = st.vms
    .map((v) => `<tr data-vm-id="${esc(v.vmId)}"><td>${esc(v.vmId)}</td><td>${esc(fnOf.get(v.vmId) ?? '')}</td><td class="num">${mib(v.rssBytes)}</td><td class="num">${mib(v.pssBytes)}</td><td class="num">${v.cpuSeconds.toFixed(1)} s</td></tr>`)
    .join('');
  $('memory').innerHTML = `<div class="bar" title="${pct.toFixed(0)} %"><div style="width:${pct.toFixed(1)}%"></div></div>
    <div class="muted">${mib(n.memoryUsedBytes)} of ${mib(n.memoryBudgetBytes)} reserved by guests (budget)</div>
    <table><tr><th>VM</th><th>function</th><th class="num">RSS</th><th class="num">PSS</th><th class="num">VMM CPU</th></tr>${rows || '<tr><td colspan="5" class="muted">no VMM running</td></tr>'}</table>`;
}

const GUARD_LEVELS = ['ok', 'evicting idle VMs', 'refusing starts', 'stopping the newest growing VM'];

/** issue 24: what the VMs measure against what their sizes add up to, and how many more idle VMs of each size fit now. */
function renderCapacity(st: DashboardState): void {
  const n = st.node;
  const m = n.memory;
  if (!m) {
    $('capacity').innerHTML = '<div class="muted">not reported by this node</div>';
    return;
  }
  const MiB = 1048576;
  // an unbounded budget: idleFit is null in JSON
  const fit = (v: number | null | undefined): string => (typeof v === 'number' && Number.isFinite(v) ? String(v) : '∞');
  const sizes = Object.keys(m.idleFit).sort((a, b) => Number(a) - Number(b));
  const rows = sizes.map((s) => `<tr data-fit-size="${esc(s)}"><td>${esc(s)} MiB</td><td class="num">${fit(m.idleFit[s])}</td></tr>`).join('');
  const guard = m.guardLevel === undefined ? 'off' : (GUARD_LEVELS[m.guardLevel] ?? String(m.guardLevel));
  $('capacity').innerHTML = `<table id="capacity-summary" data-accounting="${esc(m.accounting)}" data-measured-mib="${Math.round(m.measuredBytes / MiB)}" data-nominal-mib="${Math.round(m.nominalBytes / MiB)}" data-charged-mib="${Math.round(n.memoryUsedBytes / MiB)}" data-unmeasured="${m.unmeasured}">
    <tr><td>accounting</td><td>${esc(m.accounting)}</td></tr>
    <tr><td>VMs measure (PSS)</td><td class="num">${mib(m.measuredBytes)}${m.unmeasured > 0 ? ` (${m.unmeasured} not measured yet)` : ''}</td></tr>
    <tr><td>their sizes add up to</td><td class="num">${mib(m.nominalBytes)}</td></tr>
    <tr><td>charged against the budget</td><td class="num">${mib(n.memoryUsedBytes)} of ${mib(n.memoryBudgetBytes)}</td></tr>
    <tr><td>host memory guard</td><td>${esc(guard)}</td></tr></table>
    <table><tr><th>idle VM of</th><th class="num">how many more fit now</th></tr>${rows}</table>`;
}

function renderSnapshots(st: DashboardState): void {
  const tiers = new Map<string, { n: number; bytes: number; fns: Set<string> }>();
  for (const s of st.node.snapshots) {
    const t = tiers.get(s.tier) ?? { n: 0, bytes: 0, fns: new Set<string>() };
    t.n++;
    t.bytes += s.bytes;
    t.fns.add(s.fn);
    tiers.set(s.tier, t);
  }
  const rows = [...tiers.entries()].map(([tier, t]) => `<tr><td>${esc(tier)}</td><td class="num">${t.n}</td><td class="num">${mib(t.bytes)}</td><td>${esc([...t.fns].join(', '))}</td></tr>`).join('');
  $('snapshots').innerHTML = `<table><tr><th>tier</th><th class="num">snapshots</th><th class="num">size</th><th>functions</th></tr>${rows || '<tr><td colspan="4" class="muted">no snapshots</td></tr>'}</table>`;
}

function renderActivations(): void {
  const last = model.activations.slice(-15).reverse();
  if (last.length === 0) return;
  const rows = last
    .map((a) => {
      const total = Math.max(a.totalMs, 0.01);
      const bars = a.stages
        .map((s) => `<div class="st-${esc(s.stage)}" style="left:${((s.offsetMs / total) * 100).toFixed(2)}%;width:${((s.durMs / total) * 100).toFixed(2)}%" title="${esc(s.stage)}: ${ms(s.durMs)} (at +${ms(s.offsetMs)})"></div>`)
        .join('');
      const bad = a.status !== 'success';
      return `<tr data-activation-id="${esc(a.id)}"><td>${new Date(a.at).toLocaleTimeString()}</td><td data-runtime="${esc(a.runtime)}">${esc(a.fn)}${a.runtime && a.runtime !== 'nodejs20' ? ` <span class="muted">${esc(a.runtime)}</span>` : ''}</td><td><span class="badge p-${esc(a.startPath)}">${esc(a.startPath)}</span></td>
        <td class="${bad ? 'bad' : ''}" title="${esc(a.error ?? '')}">${esc(a.status)}</td><td class="num">${ms(a.totalMs)}</td><td style="width:50%"><div class="wf">${bars}</div></td></tr>`;
    })
    .join('');
  const stages = ['queued', 'boot', 'init', 'snapshot', 'restore', 'resync', 'dispatch', 'run', 'response'];
  $('activations').innerHTML = `<div class="legend">${stages.map((s) => `<span><i class="st-${s}"></i>${s}</span>`).join('')}</div>
    <table><tr><th>received</th><th>function</th><th>path</th><th>status</th><th class="num">total</th><th>stages (waterfall, scaled to the activation)</th></tr>${rows}</table>`;
}

setInterval(schedule, 5000); // time moves on even when nothing happens
void stream();

// ---- what-if (issue 23): the last hour's traffic simulated, on request -----

interface WhatIfRowView {
  label: string;
  invocations: number;
  warm: number;
  restore: number;
  cold: number;
  refusedTotal: number;
  p50Ms: number;
  p99Ms: number;
}

async function runWhatIf(): Promise<void> {
  const out = $('whatif');
  out.innerHTML = '<div class="muted">simulating…</div>';
  const q = `since=1h&policy=greedy-dual,hybrid-histogram`;
  try {
    const res = await fetch(`/v1/whatif?${q}`, { headers, cache: 'no-store' });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) {
      out.innerHTML = `<div class="muted">${esc((body.error as { message?: string } | undefined)?.message ?? `HTTP ${res.status}`)}</div>`;
      return;
    }
    const r = body as unknown as { actual: WhatIfRowView; asConfigured: WhatIfRowView; alternatives: WhatIfRowView[]; error: { warmPts: number; restorePts: number; coldPts: number; refusedPts: number } };
    const pct = (x: number, n: number): string => `${((100 * x) / Math.max(1, n)).toFixed(1)} %`;
    const rows = [r.actual, r.asConfigured, ...r.alternatives]
      .map((x) => `<tr><td>${esc(x.label)}</td><td>${pct(x.warm, x.invocations)}</td><td>${pct(x.restore, x.invocations)}</td><td>${pct(x.cold, x.invocations)}</td><td>${pct(x.refusedTotal, x.invocations)}</td><td>${ms(x.p50Ms)}</td><td>${ms(x.p99Ms)}</td></tr>`)
      .join('');
    const e = r.error;
    const pts = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
    out.innerHTML =
      `<table id="whatif-table"><tr><th></th><th>warm</th><th>restore</th><th>cold</th><th>refused</th><th>p50</th><th>p99</th></tr>${rows}</table>` +
      `<div class="muted">"as configured" error (points): warm ${pts(e.warmPts)}, restore ${pts(e.restorePts)}, cold ${pts(e.coldPts)}, refused ${pts(e.refusedPts)}</div>`;
    const svg = await fetch(`/v1/whatif?${q}&format=svg`, { headers, cache: 'no-store' });
    if (svg.ok) $('whatif-plot').innerHTML = await svg.text();
  } catch (err) {
    out.innerHTML = `<div class="muted">${esc(String(err))}</div>`;
  }
}

$('whatif-run').addEventListener('click', () => void runWhatIf());
