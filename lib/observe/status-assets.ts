/**
 * The status page's stylesheet and script. They are served by the status page middleware itself
 * (`app.css` and `app.js` next to the page), never inlined, so the page works under a
 * Content-Security-Policy of `default-src 'self'` with no `unsafe-inline`. The script builds
 * every element through the DOM (textContent, createElementNS for the SVG sparklines): no
 * innerHTML, no style attributes. The server renders the same markup for the first paint
 * (status-page.ts): a change to one belongs in the other.
 */

export const STATUS_CSS = `
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --panel: #fff; --text: #1c2430; --muted: #647084; --line: #e3e6eb;
  --up: #16794c; --up-bg: #dcf3e6; --down: #b42318; --down-bg: #fde4e1;
  --ejected: #a15c07; --ejected-bg: #fdf0d5; --draining: #475467; --draining-bg: #e8ebf0;
  --spark: #2f6fdb;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12161c; --panel: #1a2028; --text: #e4e8ee; --muted: #98a2b3; --line: #2a323d;
    --up: #5fd39a; --up-bg: #173a2a; --down: #ff8a80; --down-bg: #47201d;
    --ejected: #f5b85a; --ejected-bg: #43321a; --draining: #b8c0cc; --draining-bg: #2b323c;
    --spark: #7aa7ff;
  }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { display: flex; align-items: baseline; justify-content: space-between; gap: 16px; flex-wrap: wrap; margin-bottom: 16px; }
h1 { font-size: 20px; margin: 0; }
h1 small { color: var(--muted); font-weight: 400; font-size: 14px; margin-left: 8px; }
#updated { color: var(--muted); font-size: 12px; }
#updated.stale { color: var(--down); font-weight: 600; }
#banner { border-radius: 8px; padding: 10px 14px; margin-bottom: 16px; font-weight: 600; overflow-wrap: anywhere; }
#banner:empty { display: none; }
#banner.ok { background: var(--up-bg); color: var(--up); }
#banner.warn { background: var(--ejected-bg); color: var(--ejected); }
#banner.bad { background: var(--down-bg); color: var(--down); }
#summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; margin-bottom: 16px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 20px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums; }
.table-wrap { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 8px; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: middle; }
/* Text from outside (URLs, health details, errors) wraps inside its cell instead of widening the table past the page. */
td.url, td.check { white-space: normal; overflow-wrap: anywhere; }
td.url { min-width: calc(26ch + 16px); }
td.check { min-width: 12em; max-width: 26em; }
td.check .detail { display: block; margin-left: 0; }
th { white-space: normal; }
th { color: var(--muted); font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
tbody tr:last-child td { border-bottom: 0; }
tr.not-up td { background: color-mix(in srgb, var(--down-bg) 35%, transparent); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th.num { text-align: right; }
td.url { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.state { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 12px; font-weight: 700; text-transform: uppercase; letter-spacing: .04em; }
.state.up { background: var(--up-bg); color: var(--up); }
.state.down { background: var(--down-bg); color: var(--down); }
.state.ejected { background: var(--ejected-bg); color: var(--ejected); }
.state.draining { background: var(--draining-bg); color: var(--draining); }
.detail { color: var(--muted); font-size: 12px; margin-left: 6px; }
.bad-text { color: var(--down); }
svg.spark { display: block; }
svg.spark polyline { fill: none; stroke: var(--spark); stroke-width: 1.5; stroke-linejoin: round; stroke-linecap: round; }
svg.spark line { stroke: var(--line); stroke-width: 1; }
.muted { color: var(--muted); }
#discovery, #stores { margin-top: 16px; }
#discovery h2, #stores h2 { font-size: 16px; margin: 0 0 8px; }
/* Narrow screens: one card per row, each value beside its column's name (data-label), nothing to scroll sideways. */
@media (max-width: 760px) {
  body { padding: 12px; }
  .table-wrap { overflow-x: visible; }
  .table-wrap table, .table-wrap tbody, .table-wrap tr, .table-wrap td { display: block; width: 100%; }
  .table-wrap thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  .table-wrap tr { padding: 8px 0; border-bottom: 1px solid var(--line); }
  .table-wrap tbody tr:last-child { border-bottom: 0; }
  .table-wrap td { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; border: 0; padding: 3px 12px;
    white-space: normal; overflow-wrap: anywhere; text-align: right; max-width: none; min-width: 0; }
  .table-wrap td::before { content: attr(data-label); flex: none; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; text-align: left; }
  .table-wrap td.url { font-weight: 600; text-align: left; }
  .table-wrap td.url::before { content: none; }
  .table-wrap td.check { display: block; text-align: left; }
  .table-wrap td.check::before { display: block; }
  .table-wrap td[colspan]::before { content: none; }
}
`;

export const STATUS_JS = `'use strict';
(function () {
  var SVG = 'http://www.w3.org/2000/svg';
  var refreshMs = 2000;
  var lastOk = 0;
  // The server's clock at the last refresh: times in the figures are the server's.
  var serverNow = Date.now();
  var REASONS = { consecutive: 'consecutive failures', successRate: 'low success rate', failurePercentage: 'failure percentage', latency: 'slow' };

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function ms(v) {
    if (!(v > 0)) return '\\u2013';
    if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
    if (v >= 10) return Math.round(v) + ' ms';
    return v.toFixed(1) + ' ms';
  }
  function pct(r) {
    if (r === null || r === undefined) return '\\u2013';
    var p = r * 100;
    return (p > 0 && p < 10 ? p.toFixed(1) : Math.round(p)) + '%';
  }
  function since(at, now) {
    var s = Math.max(0, Math.round((now - at) / 1000));
    return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  }

  function sparkline(values) {
    var w = 120, h = 28;
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('width', String(w));
    svg.setAttribute('height', String(h));
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.setAttribute('role', 'img');
    var base = document.createElementNS(SVG, 'line');
    base.setAttribute('x1', '0'); base.setAttribute('x2', String(w));
    base.setAttribute('y1', String(h - 1)); base.setAttribute('y2', String(h - 1));
    svg.appendChild(base);
    var title = document.createElementNS(SVG, 'title');
    if (values.length < 2) {
      title.textContent = 'not enough samples yet';
      svg.setAttribute('aria-label', title.textContent);
      svg.appendChild(title);
      return svg;
    }
    var max = 0, min = Infinity;
    for (var i = 0; i < values.length; i++) { max = Math.max(max, values[i]); min = Math.min(min, values[i]); }
    var scale = max > 0 ? max : 1;
    var points = [];
    for (var j = 0; j < values.length; j++) {
      var x = 1 + (j * (w - 2)) / (values.length - 1);
      var y = h - 2 - (values[j] / scale) * (h - 5);
      points.push(x.toFixed(1) + ',' + y.toFixed(1));
    }
    var line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', points.join(' '));
    svg.appendChild(line);
    title.textContent = 'latency over the last ' + values.length + ' samples: ' + ms(min) + ' to ' + ms(max);
    svg.setAttribute('aria-label', title.textContent);
    svg.appendChild(title);
    return svg;
  }

  var TARGET_COLUMNS = ['Target', 'State', 'Weight', 'In flight', 'Requests', 'Req/s', 'Error rate', 'Latency', 'Last minute', 'Score', 'Ejections', 'Health check'];
  var DISCOVERY_COLUMNS = ['Source', 'Targets', 'Updates', 'Last update', 'Added', 'Drained', 'Errors', 'Status'];
  var STORE_COLUMNS = ['Store', 'Circuit', 'Succeeded', 'Timed out', 'Failed', 'Short-circuited', 'Pending', 'Last error'];

  // Each cell carries its column's name: the narrow layout shows it beside the value.
  function labelled(tr, labels) {
    for (var i = 0; i < tr.children.length; i++) tr.children[i].setAttribute('data-label', labels[i]);
    return tr;
  }

  function card(label, value, cls, hint) {
    var c = el('div', 'card');
    if (hint) c.title = hint;
    c.appendChild(el('div', 'label', label));
    var v = el('div', 'value' + (cls ? ' ' + cls : ''), value);
    c.appendChild(v);
    return c;
  }

  function stateCell(t) {
    var td = el('td');
    td.appendChild(el('span', 'state ' + t.state, t.state));
    var detail = '';
    if (t.state === 'ejected' && t.ejectedUntil) {
      var left = Math.round((t.ejectedUntil - serverNow) / 1000);
      detail = left > 0 ? 'back in ' + left + ' s' : t.lastCheck ? 'until a check passes' : '';
      if (t.ejectionReason) detail = REASONS[t.ejectionReason] + (detail ? ', ' + detail : '');
    }
    else if (t.slowStart) detail = 'slow start';
    if (detail) td.appendChild(el('span', 'detail', detail));
    return td;
  }

  function mb(bytes) {
    return (bytes / 1048576).toFixed(1) + ' MB';
  }

  function inFlightCell(t) {
    var td = el('td', 'num', t.inFlight);
    var c = t.concurrency;
    if (c) {
      var limit = el('span', 'detail', 'limit ' + c.limit + (c.measuringMinRtt ? ' (measuring)' : ''));
      limit.title = 'minRTT ' + c.minRtt + ' ms, sampleRTT ' + c.sampleRtt + ' ms, ' + c.blocked + ' found it full';
      td.appendChild(limit);
    }
    return td;
  }

  function scoreCell(b) {
    var td = el('td', 'num');
    if (!b) { td.appendChild(el('span', 'muted', '\\u2013')); return td; }
    td.appendChild(el('span', '', String(b.score)));
    if (b.latency !== undefined) td.appendChild(el('span', 'detail', 'est. ' + ms(b.latency)));
    return td;
  }

  function ejectionsCell(t) {
    var td = el('td', 'num', t.ejections === null ? '\\u2013' : t.ejections);
    if (t.ejectionsByReason) {
      td.title = Object.keys(REASONS).map(function (r) { return REASONS[r] + ': ' + t.ejectionsByReason[r]; }).join('\\n');
    }
    return td;
  }

  function checkCell(t) {
    var td = el('td', 'check');
    if (!t.lastCheck) { td.appendChild(el('span', 'muted', 'no active check')); return td; }
    td.appendChild(el('span', t.lastCheck.ok ? '' : 'bad-text', t.lastCheck.ok ? 'passed' : 'failed: ' + t.lastCheck.detail));
    td.appendChild(el('span', 'detail', since(t.lastCheck.at, serverNow)));
    return td;
  }

  function renderDiscovery(sources) {
    var section = $('discovery');
    if (!sources || sources.length === 0) { section.replaceChildren(); return; }
    var wrap = el('div', 'table-wrap');
    var table = el('table');
    table.setAttribute('aria-label', 'Discovery sources');
    var head = el('tr');
    DISCOVERY_COLUMNS.forEach(function (h, i) {
      var th = el('th', i > 0 && i < 7 && i !== 3 ? 'num' : '', h);
      th.setAttribute('scope', 'col');
      head.appendChild(th);
    });
    var thead = el('thead');
    thead.appendChild(head);
    var tbody = el('tbody');
    sources.forEach(function (s) {
      var tr = el('tr', s.failing ? 'not-up' : '');
      tr.setAttribute('data-discovery', s.name);
      tr.appendChild(el('td', 'url', s.name));
      tr.appendChild(el('td', 'num', s.targets));
      tr.appendChild(el('td', 'num', s.updates));
      tr.appendChild(el('td', '', s.lastUpdate ? since(s.lastUpdate, serverNow) : 'never'));
      tr.appendChild(el('td', 'num', s.added));
      tr.appendChild(el('td', 'num', s.drained));
      tr.appendChild(el('td', 'num' + (s.errors > 0 ? ' bad-text' : ''), s.errors));
      var status = el('td', 'check');
      if (s.failing) {
        status.appendChild(el('span', 'bad-text', 'failing: ' + (s.lastError ? s.lastError.message : 'error')));
        status.appendChild(el('span', 'detail', 'keeping the last ' + s.targets + ' targets'));
      } else status.appendChild(el('span', '', s.lastUpdate ? 'ok' : 'waiting for the first set'));
      tr.appendChild(status);
      tbody.appendChild(labelled(tr, DISCOVERY_COLUMNS));
    });
    table.appendChild(thead);
    table.appendChild(tbody);
    wrap.appendChild(table);
    section.replaceChildren(el('h2', '', 'Discovery'), wrap);
  }

  function renderStores(stores) {
    var section = $('stores');
    if (!stores || stores.length === 0) { section.replaceChildren(); return; }
    var wrap = el('div', 'table-wrap');
    var table = el('table');
    table.setAttribute('aria-label', 'Shared stores');
    var head = el('tr');
    STORE_COLUMNS.forEach(function (h, i) {
      var th = el('th', i > 1 && i < 7 ? 'num' : '', h);
      th.setAttribute('scope', 'col');
      head.appendChild(th);
    });
    var thead = el('thead');
    thead.appendChild(head);
    var tbody = el('tbody');
    stores.forEach(function (s) {
      var down = s.circuit !== 'closed';
      var tr = el('tr', down ? 'not-up' : '');
      tr.setAttribute('data-store', s.name);
      tr.appendChild(el('td', 'url', s.name));
      var circuit = el('td');
      circuit.appendChild(el('span', down ? 'bad-text' : '', down ? s.circuit + ' (not used)' : 'closed (used)'));
      if (s.openedAt) circuit.appendChild(el('span', 'detail', 'last opened ' + since(s.openedAt, serverNow)));
      tr.appendChild(circuit);
      tr.appendChild(el('td', 'num', s.succeeded));
      tr.appendChild(el('td', 'num' + (s.timedOut > 0 ? ' bad-text' : ''), s.timedOut));
      tr.appendChild(el('td', 'num' + (s.failed > 0 ? ' bad-text' : ''), s.failed));
      tr.appendChild(el('td', 'num', s.shortCircuited));
      tr.appendChild(el('td', 'num', s.pending));
      tr.appendChild(el('td', 'check', s.lastError || ''));
      tbody.appendChild(labelled(tr, STORE_COLUMNS));
    });
    table.appendChild(thead);
    table.appendChild(tbody);
    wrap.appendChild(table);
    section.replaceChildren(el('h2', '', 'Shared stores'), wrap);
  }

  function render(d) {
    refreshMs = d.refreshMs || refreshMs;
    serverNow = d.generatedAt;
    document.title = d.title + ' \\u2013 ' + d.targetsUp + '/' + d.targets.length + ' up';
    $('title').textContent = d.title;
    $('strategy').textContent = 'strategy: ' + d.strategy;

    var banner = $('banner');
    var notUp = d.targets.filter(function (t) { return t.state !== 'up'; });
    if (d.onBackups && !d.panic) {
      banner.className = 'warn';
      banner.textContent = 'Serving from backup targets: too few primary targets up';
    } else if (d.panic) {
      banner.className = 'bad';
      banner.textContent = 'Panic mode: only ' + d.targetsUp + ' of ' + d.targets.length + ' targets up, traffic goes to all of them';
    } else if (d.targets.length === 0) {
      banner.className = 'warn';
      banner.textContent = 'No targets in the pool';
    } else if (notUp.length === 0) {
      banner.className = 'ok';
      banner.textContent = 'All ' + d.targets.length + ' targets up';
    } else {
      banner.className = d.targetsUp === 0 ? 'bad' : 'warn';
      banner.textContent = notUp.length + ' of ' + d.targets.length + ' targets not taking traffic: ' +
        notUp.map(function (t) { return t.url + ' (' + t.state + ')'; }).join(', ');
    }

    var failing = (d.discovery || []).filter(function (s) { return s.failing; });
    if (failing.length > 0 && banner.className === 'ok') {
      banner.className = 'warn';
      banner.textContent = 'Discovery failing, last good targets kept: ' +
        failing.map(function (s) { return s.name + ' (' + (s.lastError ? s.lastError.message : 'error') + ')'; }).join(', ');
    }
    renderDiscovery(d.discovery);

    var storesDown = (d.stores || []).filter(function (s) { return s.circuit !== 'closed'; });
    if (storesDown.length > 0 && banner.className === 'ok') {
      banner.className = 'warn';
      banner.textContent = 'Shared store down, requests go on without it: ' +
        storesDown.map(function (s) { return s.name + ' (' + (s.lastError || s.circuit) + ')'; }).join(', ');
    }
    renderStores(d.stores);

    var summary = $('summary');
    summary.replaceChildren(
      card('Targets up', d.targetsUp + ' of ' + d.targets.length, d.targetsUp < d.targets.length ? 'bad-text' : ''),
      card('In flight', d.inFlight),
      card('Requests/s', (d.targets.reduce(function (n, t) { return n + t.requestRate; }, 0)).toFixed(1), '', 'attempts per second sent to targets over the last minute'),
      card('Retries', d.retries, '', 'failed attempts sent again to another target'),
      card('Unavailable', d.unavailable, d.unavailable > 0 ? 'bad-text' : '', 'requests answered 503 because no target was available'),
      card('Panic mode', d.panic ? 'ON' : 'off', d.panic ? 'bad-text' : '')
    );
    var h = d.hedging;
    if (h) summary.appendChild(card('Hedges', h.sent, '', 'hedged requests: ' + h.won + ' won by the hedge, ' + h.cancelled + ' attempts cancelled, ' + h.budgetRefused + ' refused by the budget, ' + h.noTarget + ' without another target; ' + (h.delay === null ? 'delay not learned yet' : 'sent after ' + ms(h.delay))));
    if (d.rateLimited !== null) summary.appendChild(card('Rate limited', d.rateLimited, '', 'requests refused with 429'));
    if (d.affinity) summary.appendChild(card('Sticky', pct(d.affinity.sticky + d.affinity.replaced > 0 ? d.affinity.sticky / (d.affinity.sticky + d.affinity.replaced) : null), '', 'session affinity: ' + d.affinity.sticky + ' sticky, ' + d.affinity.placed + ' placed, ' + d.affinity.replaced + ' replaced (cookie naming no ready target)'));
    if (d.cache) summary.appendChild(card('Cache hit ratio', pct(d.cache.hitRatio), '', d.cache.hits + ' hits, ' + d.cache.stale + ' stale, ' + d.cache.revalidated + ' revalidated, ' + d.cache.misses + ' misses'));
    (d.mirror || []).forEach(function (m) {
      summary.appendChild(card('Mirror copies', m.sent, m.failed > 0 ? 'bad-text' : '', 'to ' + m.targets.join(', ') + ': ' + m.completed + ' completed, ' + m.failed + ' failed, ' + m.skipped + ' skipped (over maxInFlight or maxBodyBytes), ' + m.inFlight + ' in flight'));
    });
    if (d.concurrencyRefused !== null && d.concurrencyRefused !== undefined) summary.appendChild(card('Over limit', d.concurrencyRefused, d.concurrencyRefused > 0 ? 'bad-text' : '', 'requests answered 503 because every ready target was at its adaptive concurrency limit'));
    var p = d.process;
    if (p) {
      summary.appendChild(card('Event loop delay', p.eventLoopDelay.toFixed(1) + ' ms', p.reason ? 'bad-text' : '', 'utilization ' + pct(p.eventLoopUtilization) + ', heap ' + mb(p.heapUsedBytes) + ', RSS ' + mb(p.rssBytes)));
      summary.appendChild(card('Shed', p.shed, p.reason ? 'bad-text' : '', p.reason ? 'shedding ' + pct(p.shedding) + ' of requests: ' + p.reason + ' over its limit' : 'requests answered 503 while the process was overloaded'));
    }

    var rows = d.targets.map(function (t) {
      var tr = el('tr', t.state === 'up' ? '' : 'not-up');
      tr.setAttribute('data-target', t.url);
      tr.setAttribute('data-state', t.state);
      var url = el('td', 'url', t.url);
      if (t.backup) url.appendChild(el('span', 'detail', 'backup'));
      if (t.protocol !== 'http/1.1') url.appendChild(el('span', 'detail', t.protocol));
      // A discovered target: its address, and the DNS name it serves under.
      if (t.host && t.url.indexOf('//' + t.host) < 0) url.appendChild(el('span', 'detail', t.host));
      tr.appendChild(url);
      tr.appendChild(stateCell(t));
      tr.appendChild(el('td', 'num', t.effectiveWeight === t.weight ? t.weight : t.effectiveWeight.toFixed(2) + ' / ' + t.weight));
      tr.appendChild(inFlightCell(t));
      tr.appendChild(el('td', 'num', t.total));
      tr.appendChild(el('td', 'num', t.requestRate.toFixed(1)));
      tr.appendChild(el('td', 'num' + (t.errorRate > 0 ? ' bad-text' : ''), pct(t.errorRate)));
      tr.appendChild(el('td', 'num', ms(t.latency)));
      var spark = el('td', 'spark-cell');
      spark.appendChild(sparkline(t.latencyHistory));
      tr.appendChild(spark);
      tr.appendChild(scoreCell(t.balancing));
      tr.appendChild(ejectionsCell(t));
      tr.appendChild(checkCell(t));
      return labelled(tr, TARGET_COLUMNS);
    });
    if (rows.length === 0) {
      var empty = el('tr');
      var td = el('td', 'muted', 'no targets');
      td.setAttribute('colspan', '12');
      empty.appendChild(td);
      rows.push(empty);
    }
    $('targets').replaceChildren.apply($('targets'), rows);
    lastOk = Date.now();
    var updated = $('updated');
    updated.className = '';
    updated.textContent = 'updated ' + new Date(d.generatedAt).toLocaleTimeString() + ', every ' + (refreshMs / 1000) + ' s';
  }

  function failed(err) {
    var updated = $('updated');
    updated.className = 'stale';
    updated.textContent = 'cannot refresh (' + (err && err.message ? err.message : 'error') + ')' + (lastOk ? ', figures from ' + since(lastOk, Date.now()) : '');
  }

  function poll() {
    fetch('?format=json', { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(render, failed)
      .then(function () { setTimeout(poll, refreshMs); });
  }

  poll();
})();
`;
