// The Trellis dashboard page (docs/dashboard.md): preact + htm, no build step. It holds no lattice logic: it renders
// the server's picture (src/ui/view.ts), received as Server-Sent Events from /api/stream, and sends the few changes it
// can make to /api/* with the per-process token from its own HTML.
import { h, render } from "/vendor/preact.mjs";
import { useEffect, useMemo, useRef, useState } from "/vendor/preact-hooks.mjs";
import htm from "/vendor/htm.mjs";
import { createGraph, fmtMs, fmtRate, linkKey } from "/graph.js";

const html = htm.bind(h);
const TOKEN = document.querySelector('meta[name="trellis-token"]').content;

async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json", "x-trellis-token": TOKEN },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const out = await res.json().catch(() => ({ success: false, error: { message: `HTTP ${res.status}` } }));
  if (!out.success) throw new Error(out.error?.message ?? `HTTP ${res.status}`);
  return out.message;
}

function useLattice() {
  const [state, setState] = useState(null);
  const [events, setEvents] = useState([]);
  const [live, setLive] = useState(false);
  useEffect(() => {
    const es = new EventSource("/api/stream");
    es.addEventListener("state", (e) => setState(JSON.parse(e.data)));
    es.addEventListener("events", (e) => setEvents(JSON.parse(e.data)));
    es.addEventListener("event", (e) => setEvents((prev) => [...prev.slice(-499), JSON.parse(e.data)]));
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    return () => es.close();
  }, []);
  return { state, events, live };
}

function Graph({ state }) {
  const ref = useRef(null);
  const graph = useRef(null);
  useEffect(() => {
    graph.current = createGraph(ref.current);
    return () => graph.current.cy.destroy();
  }, []);
  useEffect(() => {
    if (state && graph.current) graph.current.update(state);
  }, [state]);
  return html`<div class="graph" ref=${ref} data-testid="graph"></div>`;
}

const Figures = ({ f }) => html`<td class="num">${fmtRate(f)}</td><td class="num">${f ? f.errors : "—"}</td><td class="num">${f ? fmtMs(f.p50_ms) : "—"}</td><td class="num">${f ? fmtMs(f.p99_ms) : "—"}</td>`;
const FigureHeads = () => html`<th>rate</th><th>errors</th><th>p50</th><th>p99</th>`;
const Labels = ({ labels }) => html`${Object.entries(labels).map(([k, v]) => html`<span class="tag">${k}=${v}</span>`)}`;
const Badge = ({ s }) => html`<span class=${`badge ${s ?? "unknown"}`}>${s ?? "—"}</span>`;

function Card({ title, children, wide, testid }) {
  return html`<section class=${wide ? "card wide" : "card"} data-testid=${testid}><h2>${title}</h2>${children}</section>`;
}

function Hosts({ state }) {
  return html`<${Card} title=${`Hosts (${state.hosts.length})`} testid="hosts">
    <table><tr><th>host</th><th>labels</th><th>uptime</th><th>version</th></tr>
    ${state.hosts.map((h) => html`<tr><td title=${h.id}>${h.friendly_name}<div class="id">${h.id.slice(0, 12)}…</div></td><td><${Labels} labels=${h.labels} /></td><td>${h.uptime_human}</td><td>${h.version}</td></tr>`)}
    </table></${Card}>`;
}

function ScaleControl({ host, c, onError }) {
  const [count, setCount] = useState(String(c.max_instances));
  const [busy, setBusy] = useState(false);
  useEffect(() => setCount(String(c.max_instances)), [c.max_instances]);
  const go = async () => {
    setBusy(true);
    try {
      await api("POST", "/api/components/scale", { host_id: host.id, component_id: c.id, component_ref: c.image_ref, count: Number(count) });
    } catch (err) {
      onError(`scale ${c.id}: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="scale" data-scale=${c.id}><input type="number" min="0" value=${count} onInput=${(e) => setCount(e.target.value)} /><button disabled=${busy} onClick=${go}>Scale</button></span>`;
}

function Components({ state, onError }) {
  const rows = state.hosts.flatMap((host) => host.components.map((c) => ({ host, c })));
  return html`<${Card} title=${`Components (${rows.length})`} wide testid="components">
    <table><tr><th>component</th><th>host</th><th>image</th><th>state</th><th>instances</th><${FigureHeads} /><th>scale</th></tr>
    ${rows.map(({ host, c }) => html`<tr data-component=${c.id}><td>${c.id}</td><td>${host.friendly_name}</td><td class="ref">${c.image_ref}</td><td><${Badge} s=${c.status ?? "running"} />${c.error ? html`<div class="err">${c.error}</div>` : ""}</td><td class="num" data-testid="instances">${c.max_instances}</td><${Figures} f=${state.figures.components[c.id]} /><td><${ScaleControl} host=${host} c=${c} onError=${onError} /></td></tr>`)}
    </table></${Card}>`;
}

function Providers({ state }) {
  const rows = state.hosts.flatMap((host) => host.providers.map((p) => ({ host, p })));
  return html`<${Card} title=${`Providers (${rows.length})`} testid="providers">
    <table><tr><th>provider</th><th>host</th><th>image</th><th>state</th><th>health</th></tr>
    ${rows.map(({ host, p }) => html`<tr><td>${p.id}</td><td>${host.friendly_name}</td><td class="ref">${p.image_ref ?? ""}</td><td><${Badge} s=${p.status ?? "running"} /></td><td><${Badge} s=${p.health} /></td></tr>`)}
    </table></${Card}>`;
}

function LinkForm({ onError }) {
  const [f, setF] = useState({ source_id: "", target: "", ns: "wasi", pkg: "", interfaces: "", name: "default" });
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const put = async (e) => {
    e.preventDefault();
    try {
      await api("POST", "/api/links", {
        source_id: f.source_id, target: f.target, wit_namespace: f.ns, wit_package: f.pkg, name: f.name || "default",
        interfaces: f.interfaces.split(",").map((s) => s.trim()).filter(Boolean),
      });
    } catch (err) {
      onError(`link put: ${err.message}`);
    }
  };
  return html`<form class="inline" onSubmit=${put}>
    <input placeholder="source" value=${f.source_id} onInput=${set("source_id")} /><input placeholder="target" value=${f.target} onInput=${set("target")} />
    <input placeholder="namespace" size="6" value=${f.ns} onInput=${set("ns")} /><input placeholder="package" size="8" value=${f.pkg} onInput=${set("pkg")} />
    <input placeholder="interfaces (a,b)" value=${f.interfaces} onInput=${set("interfaces")} /><input placeholder="link name" size="8" value=${f.name} onInput=${set("name")} />
    <button>Put link</button></form>`;
}

function Links({ state, onError }) {
  const del = async (l) => {
    try {
      await api("POST", "/api/links/delete", { source_id: l.source_id, wit_namespace: l.wit_namespace, wit_package: l.wit_package, name: l.name, target: l.target });
    } catch (err) {
      onError(`link del: ${err.message}`);
    }
  };
  return html`<${Card} title=${`Links (${state.links.length})`} wide testid="links">
    <table><tr><th>source</th><th>target</th><th>interfaces</th><th>name</th><th>config</th><${FigureHeads} /><th></th></tr>
    ${state.links.map((l) => html`<tr data-link=${linkKey(l)}><td>${l.source_id}</td><td>${l.target}</td><td>${l.wit_namespace}:${l.wit_package}/${l.interfaces.join(",")}</td><td>${l.name}</td><td class="ref">${[...l.source_config.map((c) => `src:${c}`), ...l.target_config.map((c) => `tgt:${c}`)].join(" ")}</td><${Figures} f=${state.figures.links[linkKey(l)]} /><td><button class="danger" onClick=${() => del(l)}>Delete</button></td></tr>`)}
    </table><${LinkForm} onError=${onError} /></${Card}>`;
}

function Configs({ state, onError }) {
  const [name, setName] = useState("");
  const [pairs, setPairs] = useState("");
  const put = async (e) => {
    e.preventDefault();
    const values = {};
    for (const line of pairs.split(/\n|,/).map((s) => s.trim()).filter(Boolean)) {
      const i = line.indexOf("=");
      if (i <= 0) return onError(`config put: ${JSON.stringify(line)} is not KEY=VALUE`);
      values[line.slice(0, i)] = line.slice(i + 1);
    }
    try {
      await api("POST", "/api/configs", { name, values });
    } catch (err) {
      onError(`config put: ${err.message}`);
    }
  };
  const del = async (n) => {
    try {
      await api("DELETE", `/api/configs/${encodeURIComponent(n)}`);
    } catch (err) {
      onError(`config del: ${err.message}`);
    }
  };
  return html`<${Card} title=${`Named configs (${state.configs.length})`} testid="configs">
    <table><tr><th>name</th><th>values</th><th></th></tr>
    ${state.configs.map((c) => html`<tr><td>${c.name}</td><td>${Object.entries(c.values).map(([k, v]) => html`<span class="tag">${k}=${v}</span>`)}</td><td><button class="danger" onClick=${() => del(c.name)}>Delete</button></td></tr>`)}
    </table>
    <form class="inline" onSubmit=${put}><input placeholder="name" value=${name} onInput=${(e) => setName(e.target.value)} /><input placeholder="k=v, k2=v2" value=${pairs} onInput=${(e) => setPairs(e.target.value)} /><button>Put config</button></form>
    </${Card}>`;
}

function Apps({ state }) {
  return html`<${Card} title=${`Apps (${state.apps.length})`} testid="apps">
    <table><tr><th>app</th><th>version</th><th>status</th><th></th></tr>
    ${state.apps.map((a) => html`<tr><td>${a.name}</td><td>${a.version}</td><td><${Badge} s=${a.status} /></td><td class="ref">${a.message}</td></tr>`)}
    </table></${Card}>`;
}

function Events({ events }) {
  const [filter, setFilter] = useState("");
  const [beats, setBeats] = useState(false);
  const shown = useMemo(() => {
    const f = filter.toLowerCase();
    return events
      .filter((e) => beats || e.name !== "host_heartbeat")
      .filter((e) => !f || `${e.name} ${e.source} ${JSON.stringify(e.data)}`.toLowerCase().includes(f))
      .slice(-200)
      .reverse();
  }, [events, filter, beats]);
  return html`<${Card} title="Events" wide testid="events">
    <div class="inline"><input placeholder="filter (name, host, data)" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
    <label><input type="checkbox" checked=${beats} onChange=${(e) => setBeats(e.target.checked)} /> heartbeats</label></div>
    <div class="events">${shown.map((e) => html`<div class="event"><span class="time">${e.time.slice(11, 23)}</span> <b>${e.name}</b> <span class="id">${e.source.slice(0, 8)}…</span> <code>${summary(e.data)}</code></div>`)}</div>
    </${Card}>`;
}

function summary(d) {
  const s = JSON.stringify(d);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function App() {
  const { state, events, live } = useLattice();
  const [errors, setErrors] = useState([]);
  const onError = (m) => setErrors((e) => [...e.slice(-4), m]);
  if (!state) return html`<p class="loading">Connecting to the dashboard server…</p>`;
  return html`<header><h1>Trellis</h1><span class="lattice">lattice <b>${state.lattice}</b></span>
      <span class=${live && state.connected ? "live on" : "live off"} data-testid="live">${live ? (state.connected ? "live" : "NATS disconnected") : "reconnecting…"}</span>
      <span class="window">figures over ${state.figures.window_ms ? `${state.figures.window_ms / 1000} s` : "— (hosts report no metrics)"}</span></header>
    ${errors.length ? html`<div class="errors">${errors.map((e) => html`<div>${e}</div>`)}<button onClick=${() => setErrors([])}>dismiss</button></div>` : ""}
    <main>
      <div class="top"><${Graph} state=${state} /><div class="side"><${Hosts} state=${state} /><${Apps} state=${state} /><${Providers} state=${state} /></div></div>
      <div class="grid"><${Components} state=${state} onError=${onError} /><${Links} state=${state} onError=${onError} /><${Configs} state=${state} onError=${onError} /><${Events} events=${events} /></div>
    </main>`;
}

render(html`<${App} />`, document.getElementById("root"));
