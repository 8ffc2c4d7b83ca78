// logsieve live page: alerts by server-sent events, an alert's view, feedback buttons.
// Everything comes from this server; no external requests. Data goes into the DOM as text.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const alerts = new Map(); // alert_id -> record (summary or full)
  let selected = null;
  let lastId = "";
  let lastLines = null;
  let lastTime = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined)
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  const fmt = (x, d = 4) => (typeof x === "number" ? Number(x.toPrecision(d)).toString() : String(x));
  const time = (s) => (s ? new Date(s * 1000).toLocaleTimeString() : "");
  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  function setVersion(v) {
    const b = $("model-version");
    if (b.textContent !== String(v)) {
      b.textContent = String(v);
      b.classList.remove("bump"); void b.offsetWidth; b.classList.add("bump");
    }
  }

  // ------------------------------------------------------------------ the list
  function item(rec, fresh) {
    const fb = rec.feedback;
    const li = el("li", { "data-id": rec.alert_id, class: (fb ? fb.label : "") + (fresh ? " fresh" : "") },
      el("div", { class: "a-top" },
        el("span", {}, rec.alert_id, fb ? el("span", { class: "tag " + fb.label },
          fb.label === "normal" ? "not an anomaly" : "confirmed") : null),
        el("span", { class: "muted" }, time(rec.emitted_at))),
      el("div", { class: "a-sub" }, `window ${rec.window_id} · score ${fmt(rec.score)} > ${fmt(rec.threshold)}`
        + (rec.trigger ? ` · ${rec.trigger.kind}` : "")));
    li.addEventListener("click", () => select(rec.alert_id));
    if (rec.alert_id === selected) li.classList.add("selected");
    return li;
  }
  function addAlert(rec, fresh) {
    const known = alerts.has(rec.alert_id);
    alerts.set(rec.alert_id, Object.assign(alerts.get(rec.alert_id) || {}, rec));
    if (rec.alert_id > lastId) lastId = rec.alert_id;
    const li = item(alerts.get(rec.alert_id), fresh);
    const old = document.querySelector(`#alerts li[data-id="${CSS.escape(rec.alert_id)}"]`);
    if (old) old.replaceWith(li); else $("alerts").prepend(li);
    $("empty").hidden = true;
    $("alert-count").textContent = String(alerts.size);
    return known;
  }

  // ------------------------------------------------------------------ one alert
  async function select(id) {
    selected = id;
    document.querySelectorAll("#alerts li").forEach((li) =>
      li.classList.toggle("selected", li.dataset.id === id));
    let rec = alerts.get(id);
    try { rec = await api(`/v1/alerts/${encodeURIComponent(id)}`); alerts.set(id, rec); } catch (e) { /* keep */ }
    render(rec);
  }

  function render(rec) {
    $("detail-empty").hidden = true;
    $("detail").hidden = false;
    $("d-title").textContent = `${rec.alert_id} · window ${rec.window_id}`;
    const trig = rec.trigger || {};
    $("d-meta").textContent = `model ${rec.model || ""} v${rec.model_version} · emitted ${time(rec.emitted_at)}`
      + ` · trigger ${trig.kind || "?"} at ${trig.source ? trig.source.split("/").pop() : ""}:${trig.line_no ?? ""}`;
    verdict(rec.feedback);
    // score against threshold: the bar spans 0 .. max(score, threshold) * 1.25
    const top = Math.max(rec.score, rec.threshold, 1e-9) * 1.25;
    $("d-bar").style.width = `${Math.min(100, (100 * rec.score) / top)}%`;
    $("d-thr").style.left = `${Math.min(100, (100 * rec.threshold) / top)}%`;
    $("d-score").textContent = `score ${fmt(rec.score, 6)} against threshold ${fmt(rec.threshold, 6)}`
      + ` (${rec.score > rec.threshold ? "above" : "not above"})`;
    // raw lines, the trigger highlighted
    const ol = $("d-lines"); ol.replaceChildren();
    const lines = rec.lines || [];
    let hit = lines.findIndex((l) => l.line_no === trig.line_no && l.source === trig.source);
    if (hit < 0 && lines.length) hit = lines.length - 1;
    if (lines.length) ol.start = 1;
    lines.forEach((l, i) => ol.append(el("li", { class: i === hit ? "hit" : "", title: `${l.source}:${l.line_no}`,
      value: String(l.line_no) }, l.text)));
    // expected events
    const exp = rec.explanation || {};
    const box = $("d-expected"); box.replaceChildren();
    const positions = Array.isArray(exp.positions) ? exp.positions : [];
    if (!positions.length) box.append(el("p", { class: "muted" }, "This model gives no per-event expectations."));
    for (const p of positions) {
      box.append(el("div", { class: "pos-head" }, `position ${p.position}: `, el("code", {}, p.event_id), " ",
        p.template || "", el("span", { class: "muted" }, ` · rank ${fmt(p.rank)} · p=${fmt(p.probability, 3)}`
          + (p.reason ? ` · ${p.reason}` : ""))));
      expectedTable(box, p.expected || []);
    }
    // workflow divergence, parameter values (models that have them)
    const wf = exp.workflow;
    $("d-workflow-box").hidden = !wf;
    if (wf) {
      const w = $("d-workflow"); w.replaceChildren();
      w.append(el("p", {}, `at position ${wf.position}${wf.task !== null && wf.task !== undefined ? ` (task ${wf.task})` : ""}: after `,
        el("code", {}, String(wf.previous)), " came ", el("code", {}, String(wf.event_id)), ` ${wf.template || ""}`));
      expectedTable(w, wf.expected || []);
    }
    const params = exp.parameters;
    $("d-params-box").hidden = !params;
    if (params) $("d-params").textContent = JSON.stringify(params, null, 1);
  }

  function expectedTable(box, rows) {
    if (!rows.length) return;
    const t = el("table", {}, el("tr", {}, el("th", {}, "expected"), el("th", {}, "template"), el("th", {}, "probability")));
    for (const e of rows) t.append(el("tr", {}, el("td", {}, el("code", {}, e.event_id)), el("td", {}, e.template || ""),
      el("td", { class: "num" }, el("span", { class: "pbar", style: `width:${Math.round(80 * (e.probability || 0))}px` }),
        fmt(e.probability || 0, 3))));
    box.append(t);
  }

  function verdict(fb) {
    const v = $("d-verdict");
    v.hidden = !fb;
    $("btn-normal").disabled = !!fb; $("btn-confirm").disabled = !!fb;
    if (fb) {
      v.className = "verdict " + fb.label;
      v.textContent = (fb.label === "normal" ? "Marked not an anomaly" : "Confirmed as an anomaly")
        + ` · model version ${fb.model_version}`;
    }
  }

  async function give(label) {
    if (!selected) return;
    const id = selected;
    $("btn-normal").disabled = true; $("btn-confirm").disabled = true;
    try {
      const r = await api(`/v1/alerts/${encodeURIComponent(id)}/feedback`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label }) });
      setVersion(r.model_version);
      const fb = { label, model_version: r.model_version };
      addAlert(Object.assign(alerts.get(id), { feedback: fb }), false);
      if (selected === id) verdict(fb);
      loadModel();
    } catch (e) {
      const v = $("d-verdict"); v.hidden = false; v.className = "verdict error"; v.textContent = `feedback failed: ${e.message}`;
      $("btn-normal").disabled = false; $("btn-confirm").disabled = false;
    }
  }

  // ------------------------------------------------------------------ model, status, stream
  async function loadModel() {
    try {
      const m = await api("/v1/model");
      $("model-name").textContent = m.name; setVersion(m.version); $("model-threshold").textContent = fmt(m.threshold);
    } catch (e) { setTimeout(loadModel, 1000); }
  }
  async function poll() {
    try {
      const s = await api("/v1/status");
      const now = performance.now();
      if (lastLines !== null && now > lastTime) {
        const rate = ((s.lines_processed || 0) - lastLines) / ((now - lastTime) / 1000);
        $("throughput").textContent = Math.max(0, Math.round(rate)).toLocaleString();
      }
      lastLines = s.lines_processed || 0; lastTime = now;
      $("open-windows").textContent = (s.open_windows || 0).toLocaleString();
      $("lines").textContent = (s.lines_processed || 0).toLocaleString();
      if (s.model_version) setVersion(s.model_version);
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, 1000);
  }
  async function backlog() {
    for (;;) {
      const r = await api(`/v1/alerts?limit=1000${lastId ? `&since=${encodeURIComponent(lastId)}` : ""}`);
      r.alerts.forEach((a) => addAlert(a, false));
      if (r.alerts.length < 1000) break;
    }
  }
  function stream() {
    const es = new EventSource(`/v1/alerts/stream?since=${encodeURIComponent(lastId)}`);
    es.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn on"; };
    es.onerror = () => { $("conn").textContent = "reconnecting"; $("conn").className = "conn off"; };
    es.addEventListener("alert", (ev) => { addAlert(JSON.parse(ev.data), true); });
    es.addEventListener("feedback", (ev) => {
      const v = JSON.parse(ev.data);
      const rec = alerts.get(v.alert_id);
      if (rec) { addAlert(Object.assign(rec, { feedback: v }), false); if (selected === v.alert_id) verdict(v); }
    });
    es.addEventListener("model", (ev) => {
      const m = JSON.parse(ev.data); setVersion(m.version); $("model-threshold").textContent = fmt(m.threshold);
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("btn-normal").addEventListener("click", () => give("normal"));
    $("btn-confirm").addEventListener("click", () => give("anomaly"));
    loadModel(); poll();
    try { await backlog(); } catch (e) { /* the stream still starts */ }
    stream();
  });
})();
