// The live dashboard: polls /v1/stats and redraws uPlot charts. No framework, no CDN.
(() => {
  const { getJson, fmt } = window.atlas;
  const COLORS = ['#1d4ed8', '#c62828', '#2e7d32', '#f9a825', '#8e24aa', '#00838f', '#6d4c41', '#607d8b'];
  const ACTION_COLORS = { accept: '#2e7d32', tag: '#f9a825', quarantine: '#8e24aa', reject: '#c62828', tempfail: '#607d8b' };
  const charts = new Map();

  function widthOf(el) {
    return Math.max(240, el.clientWidth - 4);
  }

  /** Creates or updates a chart; series = [{ label, color, values }]. */
  function draw(id, times, series, opts = {}) {
    const el = document.getElementById(id);
    const data = [times, ...series.map((s) => s.values)];
    const key = series.map((s) => s.label).join('|');
    let c = charts.get(id);
    if (c && c.key !== key) {
      c.plot.destroy();
      c = undefined;
    }
    if (!c) {
      const plot = new uPlot(
        {
          width: widthOf(el),
          height: 200,
          scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(opts.minMax ?? 1, max * 1.1)] } },
          series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: s.color ?? COLORS[i % COLORS.length], width: 2, dash: s.dash }))],
          axes: [{}, { size: 50 }],
          legend: { live: false },
        },
        data,
        el,
      );
      c = { plot, key };
      charts.set(id, c);
    } else c.plot.setData(data);
  }

  const rate = (n, ms) => (n * 1000) / ms;

  function render(s) {
    const samples = s.samples;
    const status = document.getElementById('status');
    status.textContent = `updated ${new Date().toLocaleTimeString()} · ${samples.length} points of ${s.intervalMs / 1000} s`;
    document.getElementById('total').textContent = fmt(s.totals.messages);
    const spam = s.totals.actions.tag + s.totals.actions.quarantine + s.totals.actions.reject;
    document.getElementById('spamshare').textContent = s.totals.messages ? `${fmt((100 * spam) / s.totals.messages, 1)}%` : '–';
    if (samples.length === 0) return;
    const times = samples.map((x) => x.t / 1000);
    const last = samples[samples.length - 1];
    const answered = (x) => Object.values(x.actions).reduce((a, b) => a + b, 0);
    document.getElementById('rate').textContent = fmt(rate(answered(last), s.intervalMs), 1);
    document.getElementById('p99').textContent = fmt(last.latency.total.p99, 2);
    const v = last.cache.verdict;
    document.getElementById('hitrate').textContent = v.hits + v.misses ? `${fmt((100 * v.hits) / (v.hits + v.misses), 1)}%` : '–';
    document.getElementById('early').textContent = answered(last) ? `${fmt((100 * last.sources.early) / answered(last), 1)}%` : '–';
    document.getElementById('rss').textContent = `${fmt(last.rssMb)} MB`;

    const doors = s.doors.length ? s.doors : ['http'];
    draw('c-doors', times, doors.map((d) => ({ label: d, values: samples.map((x) => rate(x.doors[d] ?? 0, s.intervalMs)) })));
    const stages = ['total', 'classify', 'early', 'look', 'cache'];
    draw('c-latency', times, [
      ...stages.map((st, i) => ({ label: `${st} p50`, color: COLORS[i], values: samples.map((x) => x.latency[st]?.p50 ?? 0) })),
      ...stages.slice(0, 2).map((st, i) => ({ label: `${st} p99`, color: COLORS[i], dash: [6, 4], values: samples.map((x) => x.latency[st]?.p99 ?? 0) })),
    ], { minMax: 0.1 });
    draw('c-actions', times, Object.keys(ACTION_COLORS).map((a) => ({ label: a, color: ACTION_COLORS[a], values: samples.map((x) => rate(x.actions[a], s.intervalMs)) })));
    draw('c-cache', times, ['verdict', 'domain', 'geo', 'auth'].map((l) => ({
      label: l,
      values: samples.map((x) => {
        const c = x.cache[l];
        return c.hits + c.misses ? (100 * c.hits) / (c.hits + c.misses) : null;
      }),
    })), { minMax: 100 });
    draw('c-early', times, [{ label: 'early exit %', values: samples.map((x) => (answered(x) ? (100 * x.sources.early) / answered(x) : null)) }], { minMax: 10 });
    draw('c-queues', times, [
      { label: 'pool queue', values: samples.map((x) => x.poolQueue) },
      { label: 'log queue', values: samples.map((x) => x.logQueue) },
    ]);
    draw('c-memory', times, [
      { label: 'RSS', values: samples.map((x) => x.rssMb) },
      { label: 'heap used', values: samples.map((x) => x.heapMb) },
    ], { minMax: 50 });
    document.body.dataset.total = String(s.totals.messages);
  }

  async function poll() {
    try {
      render(await getJson('/v1/stats'));
    } catch (e) {
      document.getElementById('status').textContent = `error: ${e.message}`;
    }
  }
  window.addEventListener('resize', () => {
    for (const [id, c] of charts) c.plot.setSize({ width: widthOf(document.getElementById(id)), height: 200 });
  });
  poll();
  setInterval(poll, 2000);
})();
