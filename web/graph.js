// The link graph (docs/dashboard.md): components and providers as nodes inside one compound node per host, links as
// edges labelled `namespace:package/interfaces` and link name. Cytoscape does the layout (breadthfirst per host, grid); this
// file only turns the lattice picture into elements and applies the difference, so a re-link removes one edge and adds
// another without rebuilding the graph.
import cytoscape from "/vendor/cytoscape.mjs";

const STYLE = [
  {
    selector: "node",
    style: {
      label: "data(label)",
      "font-size": 15,
      "text-valign": "center",
      "text-halign": "center",
      "text-wrap": "wrap",
      color: "#0f172a",
      "border-width": 1.5,
      width: "label",
      height: "label",
      padding: "10px",
    },
  },
  { selector: "node.component", style: { shape: "round-rectangle", "background-color": "#dbeafe", "border-color": "#2563eb" } },
  { selector: "node.provider", style: { shape: "round-hexagon", "background-color": "#dcfce7", "border-color": "#16a34a", padding: "14px" } },
  { selector: "node.unhealthy, node.failed", style: { "background-color": "#fee2e2", "border-color": "#dc2626", "border-width": 3 } },
  { selector: "node.absent", style: { "background-color": "#f8fafc", "border-style": "dashed", "border-color": "#94a3b8", color: "#64748b" } },
  {
    selector: "node.host",
    style: {
      shape: "round-rectangle",
      "background-color": "#f8fafc",
      "border-color": "#cbd5e1",
      "border-width": 1,
      label: "data(label)",
      "text-valign": "top",
      "text-halign": "center",
      "font-size": 15,
      "font-weight": "bold",
      color: "#334155",
      padding: "24px",
    },
  },
  {
    selector: "edge",
    style: {
      width: 2,
      "curve-style": "bezier",
      "line-color": "#64748b",
      "target-arrow-color": "#64748b",
      "target-arrow-shape": "triangle",
      label: "data(label)",
      "font-size": 13,
      "text-wrap": "wrap",
      "text-background-color": "#ffffff",
      "text-background-opacity": 0.9,
      "text-background-padding": "2px",
      color: "#1e293b",
    },
  },
  { selector: "edge.errors", style: { "line-color": "#dc2626", "target-arrow-color": "#dc2626" } },
  { selector: "edge.fresh", style: { "line-color": "#f59e0b", "target-arrow-color": "#f59e0b", width: 3 } },
];

// Each host's workloads are laid out as a left-to-right flow (callers left, providers right) by cytoscape's
// breadthfirst layout over that host's nodes and the links between them; the hosts (compound nodes around their
// workloads) are then stacked top to bottom, and workloads that run nowhere go in a grid below.
const FLOW = {
  name: "breadthfirst",
  directed: true,
  animate: false,
  padding: 20,
  spacingFactor: 1.1,
  nodeDimensionsIncludeLabels: true,
  transform: (_node, pos) => ({ x: pos.y * 2.4, y: pos.x * 0.8 }),
};
const HOST_GAP = 90;

function layoutAll(cy) {
  let y = 0;
  const place = (nodes, layout) => {
    if (nodes.empty()) return;
    nodes.union(nodes.edgesWith(nodes)).layout(layout).run();
    const bb = nodes.boundingBox();
    nodes.shift({ x: -bb.x1, y: y - bb.y1 });
    y += bb.h + HOST_GAP;
  };
  cy.nodes(".host").forEach((h) => {
    if (h.children().empty()) {
      h.position({ x: 60, y });
      y += HOST_GAP;
    } else place(h.children(), FLOW);
  });
  place(cy.nodes(".absent"), { name: "grid", animate: false, avoidOverlap: true, nodeDimensionsIncludeLabels: true, rows: 1 });
}

const rate = (r) => (r >= 10 ? Math.round(r).toString() : r >= 1 ? r.toFixed(1) : r.toFixed(2));
export const fmtRate = (f) => (f ? `${rate(f.rate_per_s)}/s` : "—");
export const fmtMs = (v) => (v === undefined ? "—" : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);

/** `source|namespace:package|name|target`, the same key as the server's (src/ui/view.ts linkKey). */
export const linkKey = (l) => `${l.source_id}|${l.wit_namespace}:${l.wit_package}|${l.name}|${l.target}`;

/** Elements of the lattice picture: host compounds, workload nodes (each inside the first host that runs it), edges. */
export function elementsOf(state) {
  const nodes = new Map();
  const where = new Map();
  for (const h of state.hosts) {
    nodes.set(`h:${h.id}`, { group: "nodes", data: { id: `h:${h.id}`, label: `${h.friendly_name} · up ${h.uptime_human}` }, classes: "host" });
    const add = (id, kind, status, extra) => {
      const hosts = where.get(id) ?? [];
      hosts.push(h.id);
      where.set(id, hosts);
      if (hosts.length > 1) return;
      nodes.set(`w:${id}`, { group: "nodes", data: { id: `w:${id}`, parent: `h:${h.id}`, workload: id, kind, ...extra }, classes: `${kind} ${status ?? ""}` });
    };
    for (const c of h.components) add(c.id, "component", c.status, { instances: c.max_instances });
    for (const p of h.providers) add(p.id, "provider", p.health === "unhealthy" ? "unhealthy" : p.status, {});
  }
  for (const [id, hosts] of where) {
    const n = nodes.get(`w:${id}`);
    const fig = state.figures.components[id];
    const inst = n.data.kind === "component" ? ` ×${n.data.instances}` : "";
    n.data.label = `${id}${inst}${hosts.length > 1 ? ` (+${hosts.length - 1} hosts)` : ""}${fig ? `\n${fmtRate(fig)} · p99 ${fmtMs(fig.p99_ms)}` : ""}`;
  }
  const edges = [];
  for (const l of state.links) {
    for (const id of [l.source_id, l.target]) {
      if (!nodes.has(`w:${id}`)) nodes.set(`w:${id}`, { group: "nodes", data: { id: `w:${id}`, workload: id, label: `${id}\n(not running)` }, classes: "absent" });
    }
    const key = linkKey(l);
    const fig = state.figures.links[key];
    edges.push({
      group: "edges",
      data: {
        id: key,
        source: `w:${l.source_id}`,
        target: `w:${l.target}`,
        source_id: l.source_id,
        target_id: l.target,
        link_name: l.name,
        iface: `${l.wit_namespace}:${l.wit_package}/${l.interfaces.join(",")}`,
        label: `${l.wit_namespace}:${l.wit_package}/${l.interfaces.join(",")}\n${l.name}${fig ? `\n${fmtRate(fig)} · p99 ${fmtMs(fig.p99_ms)}${fig.errors ? ` · ${fig.errors} errors` : ""}` : ""}`,
      },
      classes: fig && fig.errors > 0 ? "errors" : "",
    });
  }
  return { nodes: [...nodes.values()], edges };
}

/** Creates the graph in `container`; `update(state)` applies a new lattice picture. Exposed as `window.trellisGraph`. */
export function createGraph(container) {
  const cy = cytoscape({ container, style: STYLE, elements: [], wheelSensitivity: 0.3, minZoom: 0.2, maxZoom: 3 });
  window.trellisGraph = cy;
  let laidOut = "";
  const update = (state) => {
    const { nodes, edges } = elementsOf(state);
    const want = new Map([...nodes, ...edges].map((e) => [e.data.id, e]));
    cy.batch(() => {
      // Remove what is gone, or what moved to another host (a compound parent cannot be changed in place in a batch).
      cy.elements().forEach((el) => {
        const w = want.get(el.id());
        if (!w || (el.isNode() && (el.data("parent") ?? null) !== (w.data.parent ?? null)) || (el.isEdge() && (el.data("source") !== w.data.source || el.data("target") !== w.data.target))) {
          cy.remove(el);
        }
      });
      const added = [];
      for (const e of [...nodes, ...edges]) {
        const el = cy.getElementById(e.data.id);
        if (el.nonempty()) {
          el.data(e.data);
          el.classes(e.classes);
        } else added.push(e);
      }
      cy.add(added);
      for (const e of added) if (e.group === "edges") flash(cy.getElementById(e.data.id));
    });
    const shape = cy.elements().map((e) => e.id()).sort().join(" ");
    if (shape !== laidOut) {
      laidOut = shape;
      layoutAll(cy);
      cy.fit(undefined, 30);
      if (cy.zoom() > 1.4) {
        cy.zoom(1.4);
        cy.center();
      }
    }
  };
  return { cy, update };
}

function flash(edge) {
  edge.addClass("fresh");
  setTimeout(() => edge.removeClass("fresh"), 2500);
}
