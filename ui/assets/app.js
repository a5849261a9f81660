// binarylm ui: a small single-page app over the JSON API (/api/...). Hash routes:
//   #/                 pipelines (DAG with each stage's state) and recent runs
//   #/runs             every recorded run
//   #/p/ID/s/STAGE     one stage: params, metrics, files, lineage, log, and its kind's views
//   #/curves[/D1,D2]   training curves of one or several model artifacts, overlaid
// Every chart is SVG drawn here; nothing is fetched from outside this server.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f5fb3", "#d1495b", "#2a9d8f", "#e9a23b", "#7b4fb3", "#5c6b73", "#c05f9d", "#4c9f38"];
const TOKEN_COLOURS = ["#cfe3fb", "#e4e2c3", "#fbd8d5", "#cfeed9", "#f7d2ec", "#f6efc3"];

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}
function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}
// Replaces an element's children (arrays flattened, empty values skipped).
function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}
function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let doc;
  try { doc = JSON.parse(text); } catch (_) { doc = { error: text }; }
  if (!resp.ok) throw new Error(doc.error || resp.statusText);
  return doc;
}

const fmt = {
  num(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) return v.toExponential(3);
    if (Number.isInteger(v)) return v.toLocaleString("en");
    return v.toLocaleString("en", { maximumFractionDigits: a < 1 ? 5 : 3 });
  },
  bytes(n) {
    const u = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return i ? `${n.toFixed(1)} ${u[i]}` : `${n} B`;
  },
  ms(ms) {
    if (ms < 1000) return `${ms} ms`;
    const s = ms / 1000;
    return s < 120 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  },
  short(d) { return d ? d.slice(0, 12) : ""; },
};

function badge(kind, value) { return h("span", { class: `badge ${kind}-${value}` }, value.replace("_", " ")); }
function stageLink(pid, name) { return h("a", { href: `#/p/${pid}/s/${encodeURIComponent(name)}` }, name); }

// ---- charts -------------------------------------------------------------------------------

// A line chart: series = [{name, color, points: [[x, y], ...], dashed}]. Each series is one
// <polyline data-series=NAME> whose points are exactly the data points (tests count them).
function lineChart({ title, metric, series, xLabel = "step", width = 540, height = 260, logY = false }) {
  const drawn = series.filter((sr) => sr.points.length > 0);
  const svgEl = s("svg", { class: "chart", "data-metric": metric, width, height, viewBox: `0 0 ${width} ${height}` });
  const card = h("div", { class: "card" }, h("h3", {}, title), svgEl);
  if (!drawn.length) {
    card.appendChild(h("p", { class: "muted" }, "nothing logged"));
    return card;
  }
  const m = { l: 58, r: 12, t: 10, b: 34 };
  const ty = (v) => (logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const xs = drawn.flatMap((sr) => sr.points.map((p) => p[0]));
  const ys = drawn.flatMap((sr) => sr.points.map((p) => ty(p[1])));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 + 1e-9; y1 += Math.abs(y1) * 0.1 + 1e-9; }
  const pad = (y1 - y0) * 0.05;
  // A quantity that is never negative (loss, lr, a norm) keeps its axis at or above zero.
  y0 = y0 >= 0 && !logY ? Math.max(0, y0 - pad) : y0 - pad;
  y1 += pad;
  const X = (x) => m.l + ((x - x0) / (x1 - x0)) * (width - m.l - m.r);
  const Y = (y) => height - m.b - ((y - y0) / (y1 - y0)) * (height - m.t - m.b);
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4;
    const label = logY ? fmt.num(10 ** yv) : fmt.num(Number(yv.toPrecision(3)));
    svgEl.appendChild(s("line", { class: "grid", x1: m.l, x2: width - m.r, y1: Y(yv), y2: Y(yv) }));
    svgEl.appendChild(s("text", { class: "tick", x: m.l - 6, y: Y(yv) + 4, "text-anchor": "end" }, label));
    const xv = x0 + ((x1 - x0) * i) / 4;
    svgEl.appendChild(s("text", { class: "tick", x: X(xv), y: height - m.b + 16, "text-anchor": "middle" }, fmt.num(Math.round(xv))));
  }
  svgEl.appendChild(s("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: height - m.b }));
  svgEl.appendChild(s("line", { class: "axis", x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b }));
  svgEl.appendChild(s("text", { class: "tick", x: width - m.r, y: height - 4, "text-anchor": "end" }, xLabel));
  for (const sr of drawn) {
    const pts = sr.points.map(([x, y]) => `${X(x).toFixed(2)},${Y(ty(y)).toFixed(2)}`).join(" ");
    svgEl.appendChild(s("polyline", {
      points: pts, stroke: sr.color, "data-series": sr.name, "stroke-dasharray": sr.dashed ? "5 3" : null,
    }, s("title", {}, sr.name)));
  }
  card.appendChild(h("div", { class: "legend" }, drawn.map((sr) =>
    h("span", {}, h("i", { style: `background:${sr.color}` }), `${sr.name} (${sr.points.length})`))));
  return card;
}

function barChart({ title, bars, width = 540, barH = 18, cls = "bar" }) {
  const m = { l: 150, r: 70 };
  const height = bars.length * (barH + 6) + 10;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const svgEl = s("svg", { class: "chart bars", width, height, viewBox: `0 0 ${width} ${height}` });
  bars.forEach((b, i) => {
    const y = 5 + i * (barH + 6);
    const w = ((width - m.l - m.r) * b.value) / max;
    svgEl.appendChild(s("text", { x: m.l - 8, y: y + barH - 5, "text-anchor": "end" }, b.label));
    svgEl.appendChild(s("rect", { class: b.cls || cls, x: m.l, y, width: Math.max(w, 0.5), height: barH, "data-value": b.value }));
    svgEl.appendChild(s("text", { class: "tick", x: m.l + w + 6, y: y + barH - 5 }, fmt.num(b.value)));
  });
  return h("div", { class: "card" }, h("h3", {}, title), svgEl);
}

// ---- the DAG ------------------------------------------------------------------------------

function dag(pid, stages) {
  const layer = {};
  for (const st of stages) { // plan order is topological
    layer[st.name] = Math.max(0, ...st.upstream.map((u) => (layer[u] ?? 0) + 1));
  }
  const rows = {};
  const pos = {};
  for (const st of stages) {
    const l = layer[st.name];
    rows[l] = (rows[l] || 0) + 1;
    pos[st.name] = { x: 20 + l * 190, y: 16 + (rows[l] - 1) * 64 };
  }
  const W = 150, H = 44;
  const width = 40 + (Math.max(...Object.values(layer)) + 1) * 190;
  const height = 30 + Math.max(...Object.values(rows)) * 64;
  const svgEl = s("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}` });
  for (const st of stages) {
    for (const u of st.upstream) {
      const a = pos[u], b = pos[st.name];
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      svgEl.appendChild(s("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 4},${y2}` }));
    }
  }
  for (const st of stages) {
    const p = pos[st.name];
    const why = st.reasons.length ? `\n${st.reasons.join("\n")}` : "";
    const g = s("a", { href: `#/p/${pid}/s/${encodeURIComponent(st.name)}` },
      s("g", { class: `node state-${st.state}`, "data-stage": st.name, "data-state": st.state },
        s("title", {}, `${st.name} (${st.kind}): ${st.state}${why}`),
        s("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6 }),
        s("text", { x: p.x + 10, y: p.y + 18 }, st.name),
        s("text", { class: "kind", x: p.x + 10, y: p.y + 35 }, `${st.kind} · ${st.state}`)));
    svgEl.appendChild(g);
  }
  return svgEl;
}

function stageTable(pid, stages) {
  return h("table", { class: "stages" },
    h("tr", {}, h("th", {}, "stage"), h("th", {}, "kind"), h("th", {}, "state"), h("th", {}, "headline"), h("th", {}, "why it would run")),
    stages.map((st) => h("tr", { "data-stage": st.name },
      h("td", {}, stageLink(pid, st.name)),
      h("td", {}, st.kind),
      h("td", {}, badge("state", st.state)),
      h("td", { class: "num" }, st.headline ? `${st.headline[0]} ${fmt.num(st.headline[1])}` : ""),
      h("td", {}, st.reasons.length ? h("ul", { class: "reasons" }, st.reasons.map((r) => h("li", {}, r)))
        : st.last && st.last.error ? h("span", { class: "error" }, st.last.error) : h("span", { class: "muted" }, "up to date")))));
}

function runsTable(runs) {
  const count = (r, st) => r.outcomes.filter((o) => o.status === st).length;
  return h("table", { class: "runs" },
    h("tr", {}, h("th", {}, "run"), h("th", {}, "pipeline"), h("th", {}, "status"), h("th", {}, "started"),
      h("th", { class: "num" }, "ran"), h("th", { class: "num" }, "cached"), h("th", { class: "num" }, "failed"), h("th", {}, "stages")),
    runs.map((r) => h("tr", { "data-run": r.id },
      h("td", { class: "mono" }, r.id),
      h("td", {}, r.pipeline_id === null ? r.pipeline : h("a", { href: `#/p/${r.pipeline_id}` }, r.pipeline)),
      h("td", {}, badge("status", r.live ? "running" : r.status)),
      h("td", {}, r.started_at.replace("T", " ").replace("Z", "")),
      h("td", { class: "num" }, count(r, "ran")),
      h("td", { class: "num" }, count(r, "cached")),
      h("td", { class: "num" }, count(r, "failed")),
      h("td", {}, r.outcomes.map((o) => [o.status === "failed" && r.pipeline_id !== null
        ? h("a", { href: `/api/logs/${r.id}/${encodeURIComponent(o.stage)}`, title: o.error || "" }, badge("status", o.status), " ", o.stage)
        : h("span", { title: `${o.status}, ${fmt.ms(o.duration_ms)}` }, badge("status", o.status), " ", o.stage), " "])))));
}

// ---- pages --------------------------------------------------------------------------------

async function homePage(main) {
  const home = await api("/api/home");
  document.getElementById("workspace").textContent = home.workspace;
  const pipelines = await Promise.all(home.pipelines.map((p) => (p.error ? p : api(`/api/pipelines/${p.id}`))));
  fill(main, 
    h("h1", {}, "Pipelines"),
    pipelines.length ? "" : h("p", { class: "muted" }, "No pipeline has run in this workspace yet."),
    pipelines.map((p) => pipelineCard(p)),
    h("h2", {}, `Recent runs (${home.runs.length} of ${home.total_runs}) `, h("a", { href: "#/runs" }, "all")),
    runsTable(home.runs),
    home.skipped.length ? h("div", { class: "card error" }, h("h3", {}, "Unreadable workspace files"), home.skipped.map((x) => h("div", {}, x))) : "");
}

function pipelineCard(p) {
  if (p.error) {
    return h("div", { class: "card pipeline" }, h("h2", {}, p.name || p.manifest),
      h("div", { class: "muted mono" }, p.manifest), h("pre", { class: "error" }, p.error));
  }
  const toRun = p.stages.filter((st) => st.state === "stale" || st.state === "failed").length;
  return h("div", { class: "card pipeline", "data-pipeline": p.name },
    h("h2", {}, h("a", { href: `#/p/${p.id}` }, p.name), " ",
      h("span", { class: "muted" }, toRun ? `${toRun} of ${p.stages.length} stages would run` : "up to date")),
    h("div", { class: "muted mono" }, p.manifest),
    dag(p.id, p.stages),
    stageTable(p.id, p.stages));
}

async function pipelinePage(main, id) {
  const p = await api(`/api/pipelines/${id}`);
  fill(main, h("h1", {}, `Pipeline ${p.name || ""}`), pipelineCard(p),
    h("h2", {}, "Runs of this pipeline"), runsTable(p.runs));
}

async function runsPage(main) {
  const runs = await api("/api/runs");
  fill(main, h("h1", {}, `Runs (${runs.length})`), runsTable(runs));
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function lineageList(tree) {
  const label = (t, name) => {
    const who = t.producer ? `${t.producer.stage} (${t.producer.kind})` : "no recorded producer";
    return [name ? `${name} ← ` : "", who, " ", h("span", { class: "mono muted" }, fmt.short(t.digest)), t.present ? "" : " (gone)"];
  };
  const walk = (t, name) => h("li", {}, label(t, name),
    t.inputs.length ? h("ul", {}, t.inputs.map((i) => walk(i.tree, i.name))) : "");
  return h("div", { class: "card lineage" }, h("h3", {}, "Lineage"), h("ul", {}, walk(tree, null)),
    tree.consumers.length ? [h("h3", {}, "Used by"), h("ul", {}, tree.consumers.map((c) =>
      h("li", {}, c.stage || "?", " ", h("span", { class: "mono muted" }, fmt.short(c.digest)))))] : "");
}

async function stagePage(main, id, name) {
  const v = await api(`/api/pipelines/${id}/stages/${encodeURIComponent(name)}`);
  const n = v.node, r = v.result;
  const parts = [
    h("h1", {}, h("a", { href: `#/p/${id}` }, v.pipeline), " / ", h("span", { class: "stage-name" }, n.name), " ",
      h("span", { class: "muted" }, n.kind), " ", badge("state", n.state)),
  ];
  if (n.reasons.length) parts.push(h("div", { class: "card" }, h("h3", {}, "Why it would run again"), h("ul", { class: "reasons" }, n.reasons.map((x) => h("li", {}, x)))));
  if (n.last && n.last.error) parts.push(h("div", { class: "card error" }, h("h3", {}, `Failed in run ${n.last.run_id}`), h("pre", {}, n.last.error)));
  parts.push(detailsView(v));
  if (v.model) parts.push(h("div", { class: "card" }, h("a", { class: "inspect-link", href: `#/p/${id}/s/${encodeURIComponent(name)}/inspect` }, "Open the model inspector"), h("span", { class: "muted" }, " — attention maps, next-token probabilities, logit lens, embedding space")));
  if (v.tokenizer) parts.push(tokenizeBox(id, name));
  if (r) {
    parts.push(h("div", { class: "pair" }, h("div", { class: "card" }, h("h3", {}, r.current ? "Artifact" : "Previous artifact (the stage is out of date)"), kv([
      ["digest", h("span", { class: "mono" }, fmt.short(r.digest))],
      ["fingerprint", h("span", { class: "mono" }, fmt.short(r.fingerprint))],
      ["run", h("span", { class: "mono" }, r.run_id)],
      ["started", r.started_at],
      ["took", fmt.ms(r.duration_ms)],
      ["ran with", [r.ran_with.device, r.ran_with.threads ? `, ${r.ran_with.threads} thread${r.ran_with.threads === 1 ? "" : "s"}` : "", r.ran_with.libtorch ? `, libtorch ${r.ran_with.libtorch}` : ""].join("")],
      ["inputs", Object.entries(r.inputs).map(([k, d]) => h("div", {}, `${k} ← `, h("span", { class: "mono" }, fmt.short(d))))],
    ])),
    h("div", { class: "card" }, h("h3", {}, "Metrics"), h("table", { class: "metrics" },
      Object.entries(r.metrics).map(([k, x]) => h("tr", {}, h("td", {}, k, r.headline === k ? " ★" : ""), h("td", { class: "num" }, fmt.num(x))))))));
  }
  parts.push(h("div", { class: "card" }, h("h3", {}, "Params (resolved, as the next run would use them)"), h("pre", { class: "params" }, JSON.stringify(v.params, null, 2))));
  if (v.files.length) {
    parts.push(h("div", { class: "card" }, h("h3", {}, `Files (${v.files.length})`), h("table", { class: "files" },
      v.files.slice(0, 200).map((f) => h("tr", {},
        h("td", {}, h("a", { href: `/api/objects/${r.digest}/files/${f.path.split("/").map(encodeURIComponent).join("/")}` }, f.path)),
        h("td", { class: "num" }, fmt.bytes(f.size)))))));
  }
  if (v.lineage) parts.push(lineageList(v.lineage));
  if (v.log) {
    parts.push(h("div", { class: "card" }, h("h3", {}, `Log (run ${v.log.run_id})`, v.log.truncated ? " — the end of it" : ""),
      h("pre", { class: "log" }, v.log.text || "(empty)")));
  }
  fill(main, ...parts);
}

function detailsView(v) {
  const d = v.details;
  if (d.type === "data") return dataView(d.stats);
  if (d.type === "training") return h("div", {}, h("h2", {}, "Training ", h("a", { href: `#/curves/${v.result.digest}` }, "(open in curves)")), trainingCharts([{ name: v.node.name, color: PALETTE[0], lines: d.curve }]));
  if (d.type === "eval") return evalView(d.results, d.chart);
  return "";
}

function dataView(st) {
  const funnel = st.steps.map((x) => ({ label: x.name, value: x.documents_out }));
  const read = st.sources.reduce((a, x) => a + x.documents, 0);
  return h("div", {},
    h("h2", {}, "Data"),
    h("div", { class: "charts" },
      barChart({ title: "Cleaning funnel: documents after each step", bars: [{ label: "read", value: read }, ...funnel] }),
      barChart({ title: "Length of kept documents (characters)", bars: trimEmpty(st.length_histogram).map((b) => ({ label: `${fmt.num(b.min_chars)}–${fmt.num(b.max_chars)}`, value: b.documents, cls: "bar out" })) })),
    h("div", { class: "card" }, h("h3", {}, "Removed, by reason"),
      Object.keys(st.removed).length ? h("table", {}, Object.entries(st.removed).map(([k, x]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, fmt.num(x)))))
        : h("p", { class: "muted" }, "nothing removed")),
    h("div", { class: "card" }, h("h3", {}, `Split: ${fmt.num(st.train.documents)} train, ${fmt.num(st.val.documents)} val documents`),
      h("h3", {}, "Samples (train)"),
      h("table", { class: "samples" }, h("tr", {}, st.columns.map((c) => h("th", {}, c))),
        st.samples.map((row) => h("tr", {}, row.map((x) => h("td", {}, x)))))));
}

// The histogram's buckets from the first to the last that holds a document.
function trimEmpty(buckets) {
  const first = buckets.findIndex((b) => b.documents > 0);
  if (first < 0) return [];
  let last = buckets.length - 1;
  while (buckets[last].documents === 0) last--;
  return buckets.slice(first, last + 1);
}

function evalView(res, chart) {
  const rows = [];
  for (const t of res.tasks) {
    const metrics = t.scores.length ? Object.keys(t.scores[0].metrics) : [];
    for (const m of metrics) {
      rows.push(h("tr", { "data-task": t.name, "data-metric": m }, h("td", {}, t.name), h("td", {}, m),
        t.scores.map((sc) => { const x = sc.metrics[m]; return h("td", { class: "num" }, x ? `${fmt.num(x.value)} ± ${fmt.num(x.stderr)}` : "–"); })));
    }
  }
  return h("div", {}, h("h2", {}, "Evaluation"),
    h("div", { class: "card" }, h("table", { class: "eval" },
      h("tr", {}, h("th", {}, "task"), h("th", {}, "metric"), res.models.map((m) => h("th", { class: "num" }, m))), rows)),
    chart ? h("div", { class: "card" }, h("img", { src: chart, alt: "eval chart", style: "max-width:100%" })) : "");
}

function tokenizeBox(id, name) {
  const out = h("div", { class: "tokens" });
  const info = h("div", { class: "muted" });
  const area = h("textarea", { id: "tokenize-input", placeholder: "Type text to see its tokens", spellcheck: "false" });
  let timer = null, seq = 0;
  const run = async () => {
    const mine = ++seq;
    try {
      const r = await api(`/api/pipelines/${id}/stages/${encodeURIComponent(name)}/tokenize`, { text: area.value });
      if (mine !== seq) return;
      out.replaceChildren(...r.tokens.map((t, i) => h("span", {
        class: `tok${t.special ? " special" : ""}`, style: `background:${TOKEN_COLOURS[i % TOKEN_COLOURS.length]}`,
        title: `id ${t.id}`, "data-id": t.id,
      }, t.text.replace(/\n/g, "↵").replace(/\t/g, "→"), h("small", {}, t.id))));
      info.textContent = `${r.tokens.length} tokens, ${r.bytes} bytes (${(r.bytes / Math.max(r.tokens.length, 1)).toFixed(2)} bytes/token), vocab ${r.vocab_size}`;
      out.dataset.count = r.tokens.length;
    } catch (e) { info.textContent = e.message; }
  };
  area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 120); });
  return h("div", { class: "card tokenize" }, h("h3", {}, "Tokenize"), area, info, out);
}

function trainingCharts(runs) {
  const series = (key, label, dashed) => runs.map((r) => ({
    name: runs.length > 1 ? `${r.name} ${label}` : label, color: r.color, dashed,
    points: r.lines.filter((l) => typeof l[key] === "number").map((l) => [l.step, l[key]]),
  }));
  return h("div", { class: "charts" },
    lineChart({ title: "Loss (train solid, validation dashed)", metric: "loss", series: [...series("loss", "train loss"), ...series("val_loss", "val loss", true)] }),
    lineChart({ title: "Learning rate", metric: "lr", series: series("lr", "lr") }),
    lineChart({ title: "Gradient norm (before clipping)", metric: "grad_norm", series: series("grad_norm", "grad norm") }),
    // Only a running stage's log has per-step timings: an artifact keeps what its inputs
    // determine, so finished runs show their mean tokens/s in the metrics instead.
    runs.some((r) => r.lines.some((l) => typeof l.tokens_per_s === "number"))
      ? lineChart({ title: "Tokens per second", metric: "tokens_per_s", series: series("tokens_per_s", "tokens/s") }) : "");
}

async function curvesPage(main, selected) {
  const sources = await api("/api/curves");
  const chosen = new Set(selected.length ? selected : sources.slice(0, 1).map((x) => x.digest));
  const box = h("div", { class: "card" }, h("h3", {}, "Model artifacts"),
    sources.length ? h("table", { class: "sources" }, sources.map((x) => h("tr", {},
      h("td", {}, h("input", {
        type: "checkbox", "data-digest": x.digest, checked: chosen.has(x.digest),
        onchange: (e) => {
          if (e.target.checked) chosen.add(x.digest); else chosen.delete(x.digest);
          location.hash = `#/curves/${[...chosen].join(",")}`;
        },
      })),
      h("td", {}, x.stage), h("td", {}, x.kind), h("td", {}, x.pipeline), h("td", { class: "mono" }, fmt.short(x.digest)),
      h("td", { class: "mono" }, x.run_id),
      h("td", { class: "num" }, x.headline ? `${x.headline[0]} ${fmt.num(x.headline[1])}` : ""),
      h("td", { class: "num" }, x.tokens_per_s ? `${fmt.num(Math.round(x.tokens_per_s))} tok/s` : ""))))
      : h("p", { class: "muted" }, "No training stage has stored a curve yet."));
  const picked = sources.filter((x) => chosen.has(x.digest));
  const lines = await Promise.all(picked.map((x) => api(`/api/curves/${x.digest}`)));
  const runs = picked.map((x, i) => ({ name: `${x.stage} ${fmt.short(x.digest).slice(0, 6)}`, color: PALETTE[i % PALETTE.length], lines: lines[i] }));
  fill(main, h("h1", {}, "Curves"), box, runs.length ? trainingCharts(runs) : "");
}

// ---- the model inspector -----------------------------------------------------------------

const shown = (t) => t.replace(/\n/g, "↵").replace(/\t/g, "→");
const pct = (p) => `${(100 * p).toFixed(p >= 0.1 ? 0 : 1)}%`;

// One head's attention: a lower-triangular T×T grid, cell (i, j) = how much query i reads key j.
function heatmap(att, tokens, layer, head) {
  const n = tokens.length, cell = Math.max(4, Math.min(18, Math.floor(170 / n))), size = n * cell;
  const svgEl = s("svg", { class: "heatmap", "data-layer": layer, "data-head": head, width: size + 2, height: size + 2, viewBox: `-1 -1 ${size + 2} ${size + 2}` });
  svgEl.appendChild(s("rect", { x: 0, y: 0, width: size, height: size, fill: "#fafbfc", stroke: "#d9dde6" }));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const w = att[i][j];
      svgEl.appendChild(s("rect", { x: j * cell, y: i * cell, width: cell, height: cell, fill: "#2f5fb3", "fill-opacity": Math.min(1, w), "data-row": i, "data-col": j, "data-w": w },
        s("title", {}, `${shown(tokens[i].text)} → ${shown(tokens[j].text)}: ${w.toFixed(3)}`)));
    }
  }
  return h("figure", { class: "head" }, svgEl, h("figcaption", { class: "muted" }, `L${layer + 1} H${head + 1}`));
}

function scatter(view, highlight) {
  const W = 560, H = 420, m = 16;
  const xs = view.points.map((p) => p[0]), ys = view.points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const X = (x) => m + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * m);
  const Y = (y) => H - m - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * m);
  const svgEl = s("svg", { class: "embeddings", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  view.points.forEach((p, id) => svgEl.appendChild(s("circle", { cx: X(p[0]), cy: Y(p[1]), r: highlight.has(id) ? 4 : 1.6, fill: highlight.has(id) ? "#d1495b" : "#9aa3b5", "data-id": id }, s("title", {}, `${id} ${shown(view.texts[id])}`))));
  for (const id of highlight) {
    const p = view.points[id];
    if (p) svgEl.appendChild(s("text", { x: X(p[0]) + 5, y: Y(p[1]) - 4 }, shown(view.texts[id])));
  }
  return svgEl;
}

async function inspectPage(main, id, name) {
  const url = `/api/pipelines/${id}/stages/${encodeURIComponent(name)}/inspect`;
  const area = h("textarea", { id: "inspect-input", spellcheck: "false" }, "Mia put the key in the box. Then she");
  const info = h("div", { class: "muted" });
  const out = h("div", { class: "inspection" });
  const tokenBox = h("input", { id: "neighbour-input", placeholder: "a token, e.g.  the", size: 16 });
  const embOut = h("div", {});
  let seq = 0;
  const run = async () => {
    const mine = ++seq;
    info.textContent = "running the model…";
    try {
      const started = performance.now();
      const r = await api(url, { op: "prompt", text: area.value, top_k: 5 });
      if (mine !== seq) return;
      info.textContent = `${r.tokens.length} tokens, ${r.n_layer} layers × ${r.n_head} heads, answered in ${Math.round(performance.now() - started)} ms`;
      fill(out,
        h("h2", {}, "Tokens"),
        h("div", { class: "tokens" }, r.tokens.map((t, i) => h("span", { class: "tok", style: `background:${TOKEN_COLOURS[i % TOKEN_COLOURS.length]}`, title: `id ${t.id}` }, shown(t.text), h("small", {}, t.id)))),
        h("h2", {}, "Attention, per layer and head (row: a position; its cells: where it reads, each row sums to 1)"),
        r.attention.map((layer, l) => h("div", { class: "heads" }, layer.map((att, hd) => heatmap(att, r.tokens, l, hd)))),
        h("h2", {}, "Next-token probabilities at each position"),
        h("table", { class: "topk" }, h("tr", {}, h("th", {}, "after"), h("th", {}, "most likely next tokens")),
          r.top_k.map((cands, i) => h("tr", { "data-pos": i },
            h("td", { class: "mono" }, shown(r.tokens.slice(Math.max(0, i - 3), i + 1).map((t) => t.text).join(""))),
            h("td", {}, cands.map((c) => h("span", { class: "cand", "data-id": c.id, title: `id ${c.id}` }, h("code", {}, shown(c.text)), ` ${pct(c.prob)}  `)))))),
        h("h2", {}, "Logit lens: what each layer would predict (the final norm and head applied to its residual stream)"),
        h("div", { class: "card scroll" }, h("table", { class: "lens" },
          h("tr", {}, h("th", {}, "layer"), r.tokens.map((t) => h("th", { class: "mono" }, shown(t.text)))),
          r.logit_lens.map((row, l) => h("tr", { "data-layer": l }, h("th", {}, l === 0 ? "embeddings" : `after block ${l}`),
            row.map((cands) => h("td", { class: "mono", style: `background: rgba(47,95,179,${(0.6 * cands[0].prob).toFixed(3)})`, title: cands.map((c) => `${shown(c.text)} ${pct(c.prob)}`).join("\n"), "data-id": cands[0].id }, shown(cands[0].text))))))));
    } catch (e) { if (mine === seq) info.textContent = e.message; }
  };
  const showEmbeddings = async () => {
    try {
      const e = await api(url, { op: "embeddings", token: tokenBox.value || null, neighbours: 10 });
      const hl = new Set(e.token ? [e.token.id, ...e.neighbours.map((n) => n.id)] : []);
      fill(embOut,
        h("p", { class: "muted" }, `PCA of the ${e.points.length} token embeddings: the two components explain ${pct(e.explained[0])} and ${pct(e.explained[1])} of their variance.`),
        scatter(e, hl),
        e.token ? h("table", { class: "neighbours" }, h("tr", {}, h("th", {}, `nearest to "${shown(e.token.text)}"`), h("th", { class: "num" }, "cosine")),
          e.neighbours.map((n) => h("tr", { "data-id": n.id }, h("td", { class: "mono" }, shown(n.text)), h("td", { class: "num" }, n.cosine.toFixed(3))))) : "");
    } catch (err) { fill(embOut, h("p", { class: "error" }, err.message)); }
  };
  let timer = null;
  area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 300); });
  tokenBox.addEventListener("change", showEmbeddings);
  fill(main,
    h("h1", {}, h("a", { href: `#/p/${id}/s/${encodeURIComponent(name)}` }, name), " — model inspector"),
    h("div", { class: "card" }, h("h3", {}, "Prompt"), area, info),
    out,
    h("div", { class: "card" }, h("h2", {}, "Embedding space"), h("label", {}, "Neighbours of ", tokenBox), " ",
      h("button", { onclick: showEmbeddings }, "Show"), embOut));
  await run();
  await showEmbeddings();
}

// ---- live progress ------------------------------------------------------------------------

function showLive(live) {
  const el = document.getElementById("live");
  if (!live.runs.length) { el.hidden = true; el.replaceChildren(); return; }
  el.hidden = false;
  fill(el, live.runs.map((r) => h("div", { class: "live-run", "data-run": r.id },
    h("strong", {}, `Running: ${r.pipeline}`), " ", h("span", { class: "mono muted" }, r.id), " — ",
    r.done.length ? `done: ${r.done.join(", ")}; ` : "",
    r.running.map((st) => {
      const last = st.metrics[st.metrics.length - 1];
      const lastLog = st.log_tail.trim().split("\n").pop() || "";
      return h("div", { class: "live-stage", "data-stage": st.stage },
        stageLink(r.pipeline_id, st.stage), last ? ` step ${last.step}, loss ${fmt.num(last.loss)}${last.tokens_per_s ? `, ${fmt.num(Math.round(last.tokens_per_s))} tok/s` : ""}` : "",
        " ", h("span", { class: "mono muted" }, lastLog.slice(0, 160)),
        st.metrics.length > 1 ? lineChart({ title: "Loss so far", metric: "live_loss", height: 160,
          series: [{ name: "train loss", color: PALETTE[0], points: st.metrics.filter((l) => typeof l.loss === "number").map((l) => [l.step, l.loss]) },
            { name: "val loss", color: PALETTE[1], dashed: true, points: st.metrics.filter((l) => typeof l.val_loss === "number").map((l) => [l.step, l.val_loss]) }] }) : "");
    }))));
}

function connectLive() {
  const es = new EventSource("/api/live/events");
  es.addEventListener("live", (e) => showLive(JSON.parse(e.data)));
  // The workspace's results changed: redraw the page, unless that would throw away what is
  // being typed (the tokenize box, the inspector's prompt).
  es.addEventListener("changed", () => {
    const el = document.activeElement;
    const typing = el && (el.tagName === "TEXTAREA" || el.tagName === "INPUT");
    if (!typing && !location.hash.endsWith("/inspect")) route();
  });
}

// ---- routing ------------------------------------------------------------------------------

async function route() {
  const main = document.getElementById("main");
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  document.body.dataset.ready = "";
  try {
    if (parts[0] === "p" && parts[2] === "s" && parts[4] === "inspect") await inspectPage(main, Number(parts[1]), parts[3]);
    else if (parts[0] === "p" && parts[2] === "s") await stagePage(main, Number(parts[1]), parts[3]);
    else if (parts[0] === "p") await pipelinePage(main, Number(parts[1]));
    else if (parts[0] === "runs") await runsPage(main);
    else if (parts[0] === "curves") await curvesPage(main, (parts[1] || "").split(",").filter(Boolean));
    else await homePage(main);
  } catch (e) {
    fill(main, h("div", { class: "card error" }, h("h3", {}, "Could not load this page"), h("pre", {}, e.message)));
  }
  document.body.dataset.ready = location.hash || "#/";
}

window.addEventListener("hashchange", route);
route();
connectLive();
