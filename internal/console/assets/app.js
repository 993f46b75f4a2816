// fsmd console: one page that routes itself by its URL (/ui/..., the server answers every such path
// with this page) and reads the /v1 API with the key the user enters once per browser tab.
//
// With a write key (or token) the instance page also acts: it offers the events the caller may
// send now, each as a form built from the event's payload schema, with "Explain" (what would
// happen, nothing sent) and "Send". A read key sees no form; GET /v1/me says which the key is.
//
// With an admin key the console also operates (docs/operators.md): an instance page offers
// suspend/resume, terminate and repair, each with a reason; a definition page offers a bulk (a
// filter, an event or an action, its plan, then the run followed as it goes); the dead letters page
// re-drives a webhook delivery. Read and write keys see none of these controls (the server refuses
// them anyway: they need the admin role).
//
// Every value from the API or the URL reaches the page as text (h() makes text nodes, never HTML):
// ids, contexts and payloads are data, and a script in an instance id stays a string. The one HTML
// the page inserts is Mermaid's SVG, drawn from the server's diagram (whose names are identifiers)
// with securityLevel "strict".
"use strict";

const KEY = "fsmd.key";
const LIVE_MS = 5000; // how often the definition page refreshes its counts
const WINDOWS = [["24 h", 1], ["7 days", 7], ["30 days", 30], ["1 year", 365]];
const HEAT = 5; // heat classes heat0..heat4
const HISTORY_MAX = 2000; // transitions an instance page reads
const PAGES_MAX = 8; // pages of a list read for one view: each is at most 4 MiB, so at most 32 MiB
const CHILDREN_READ = 1000; // children of a group an instance page reads (one page) and counts by state
const CHILDREN_SHOWN = 100; // children of a group listed at first, and added by each "more"
const BULK_POLL_MS = 500; // how often a running bulk's progress is read

const main = document.getElementById("main");
let generation = 0; // bumped at every navigation: work of an older page stops touching the DOM

// h builds an element. attrs: properties and attributes ("on*" are listeners); kids: nodes, strings
// (as text), arrays, or null/false (skipped).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  const add = (k) => {
    if (k == null || k === false) return;
    if (Array.isArray(k)) k.forEach(add);
    else el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  };
  kids.forEach(add);
  return el;
}

// current marks the link to the page shown.
function current(a, yes) {
  if (yes) a.className = "current";
  return a;
}

// link is an in-page link: the router handles it without reloading.
function link(href, ...kids) {
  return h("a", { href, "data-nav": true }, ...kids);
}

const ui = {
  definition: (name, q) => "/ui/definitions/" + encodeURIComponent(name) + (q ? "?" + new URLSearchParams(q) : ""),
  instance: (id) => "/ui/instances/" + encodeURIComponent(id),
  instances: (q) => "/ui/instances?" + new URLSearchParams(q),
  migration: (id) => "/ui/migrations/" + encodeURIComponent(id),
};

// ---- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || "HTTP " + status);
    this.status = status;
    this.code = problem && problem.code;
  }
}

// api reads (GET) or, given a body, sends it as JSON (POST unless method says otherwise); headers
// are added to the request's.
async function api(path, { method, body: send, headers: extra } = {}) {
  const headers = Object.assign({ Accept: "application/json, text/plain" }, extra);
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = "Bearer " + key;
  const init = { method: method || (send === undefined ? "GET" : "POST"), headers, cache: "no-store" };
  if (send !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(send);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { detail: "fsmd does not answer: " + e.message, code: "unreachable" });
  }
  const type = resp.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await resp.json().catch(() => null) : await resp.text();
  if (resp.status === 401) {
    if (key) sessionStorage.removeItem(KEY); // a refused key is not kept: the prompt asks for another
    showKeyState();
    askKey(key ? "The key was refused: " + ((body && body.detail) || "") : "This server needs an API key.");
  }
  if (!resp.ok) throw new ApiError(resp.status, typeof body === "object" ? body : { detail: body });
  return body;
}

// pages fetches the pages of a list endpoint that pages with `after`/`next`, up to max items and
// PAGES_MAX pages (a page ends early at 4 MiB, so items alone would not bound what is read); the
// list has `cut` set when there was more.
async function pages(path, max) {
  let items = [], after = "";
  for (let n = 1; ; n++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(path + (after ? sep + "after=" + encodeURIComponent(after) : ""));
    items = items.concat(page.items || []);
    if (!page.next) return items;
    if (items.length >= max || n >= PAGES_MAX) {
      items.cut = true;
      return items;
    }
    after = page.next;
  }
}

// ---- the key --------------------------------------------------------------------------------

function askKey(why) {
  document.getElementById("key-why").textContent = why;
  document.getElementById("key").hidden = false;
  document.getElementById("key-input").focus();
}

function showKeyState() {
  const el = document.getElementById("keystate");
  el.replaceChildren();
  if (sessionStorage.getItem(KEY)) {
    el.append("key set", h("button", { class: "plain", type: "button", onclick: () => {
      sessionStorage.removeItem(KEY);
      showKeyState();
      render();
    } }, "Forget key"));
  }
}

// whoami is GET /v1/me for the key in use (read once per key): who the server takes the caller
// for, with its role and groups; null when it cannot be read, and then the console only reads.
let who = null; // { key, answer: Promise }
function whoami() {
  const key = sessionStorage.getItem(KEY) || "";
  if (!who || who.key !== key) {
    const mine = { key };
    mine.answer = api("/v1/me").catch(() => {
      if (who === mine) who = null; // asked again next time: the failure may have been passing
      return null;
    });
    who = mine;
  }
  return who.answer;
}

document.getElementById("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = document.getElementById("key-input");
  const key = input.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  input.value = "";
  document.getElementById("key").hidden = true;
  showKeyState();
  render();
});

document.getElementById("find").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = document.getElementById("find-id").value.trim();
  if (text) navigate(await findInstance(text));
});

// findInstance is where the search box leads: the instance with that id, else those that have it
// as a key value (docs/operators.md, "Correlate"): "A-17" is looked for in every key of every
// definition that declares keys, "order_number=A-17" in that key only. One found opens it, several
// are listed; none opens the id's page, which says that there is no such instance.
async function findInstance(text) {
  try {
    await api("/v1/instances/" + encodeURIComponent(text));
    return ui.instance(text);
  } catch (e) {
    if (e.status !== 404) return ui.instance(text);
  }
  const eq = text.indexOf("=");
  const want = eq > 0 ? text.slice(0, eq).trim() : "", value = eq > 0 ? text.slice(eq + 1).trim() : text;
  const defs = await pages("/v1/definitions", 1000).catch(() => []);
  for (const d of defs) {
    for (const key of d.keys || []) {
      if (want && key !== want) continue;
      const filter = { definition: d.name, ["ctx." + key]: value };
      const page = await api("/v1/instances?" + new URLSearchParams(Object.assign({ limit: 2 }, filter))).catch(() => null);
      const items = (page && page.items) || []; // a value not of the key's type is refused: not found there
      if (items.length === 1) return ui.instance(items[0].id);
      if (items.length > 1) return ui.instances(filter);
    }
  }
  return ui.instance(text);
}

// ---- routing --------------------------------------------------------------------------------

function navigate(href) {
  history.pushState(null, "", href);
  render();
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[data-nav]");
  if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);

const routes = [
  [/^\/ui\/?$/, definitionsPage],
  [/^\/ui\/definitions\/([^/]+)$/, definitionPage],
  [/^\/ui\/instances$/, instancesPage],
  [/^\/ui\/instances\/(.+)$/, instancePage],
  [/^\/ui\/migrations\/([^/]+)$/, migrationPage],
  [/^\/ui\/worklist$/, worklistPage],
  [/^\/ui\/dead-letters$/, deadLettersPage],
];

async function render() {
  const gen = ++generation;
  const path = location.pathname;
  const q = new URLSearchParams(location.search);
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  for (const [re, page] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    let arg;
    try {
      arg = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    } catch {
      return show(gen, problem(new ApiError(400, { detail: "the address is not properly escaped: " + path })));
    }
    try {
      const nodes = await page(arg, q, gen); // pages that draw in steps show themselves and return nothing
      if (nodes) show(gen, nodes);
    } catch (e) {
      show(gen, problem(e));
    }
    return;
  }
  show(gen, [h("h1", {}, "Not found"), h("p", {}, "The console has no page at ", h("code", {}, path), ".")]);
}

// show replaces the page, unless the user has gone elsewhere since it started loading.
function show(gen, nodes) {
  if (gen !== generation) return false;
  main.replaceChildren(...[].concat(nodes).filter((n) => n != null && n !== false)); // null would show as "null"
  return true;
}

function problem(e) {
  const what = e.status === 404 ? "Not found" : e.status === 403 ? "Not allowed" : e.status === 401 ? "Key needed" : "Error";
  return h("div", { class: "error", role: "alert" }, h("strong", {}, what + ": "), e.message,
    e.code ? h("span", { class: "code" }, "(" + e.code + ")") : null);
}

// ---- formatting -----------------------------------------------------------------------------

const num = (n) => (n == null ? "–" : Number(n).toLocaleString("en"));

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function duration(ms) {
  if (ms == null) return "–";
  const s = Math.abs(ms) / 1000;
  if (s < 1) return Math.round(Math.abs(ms)) + " ms";
  if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " days";
}

function relative(iso) {
  const ms = new Date(iso) - Date.now();
  return ms >= 0 ? "in " + duration(ms) : duration(ms) + " ago";
}

const json = (v) => h("pre", { class: "json" }, JSON.stringify(v, null, 2));

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

function table(head, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty || "None.");
  return h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => (c.startsWith("#") ? h("th", { class: "num" }, c.slice(1)) : h("th", {}, c))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (head[i].startsWith("#") ? h("td", { class: "num" }, c) : h("td", {}, c)))))));
}

// heat maps n in [0, max] to one of HEAT classes: 0 only for none.
function heat(n, max) {
  if (!n || !max) return 0;
  return Math.min(HEAT - 1, 1 + Math.floor(((HEAT - 1) * Math.log1p(n)) / Math.log1p(max + 1)));
}

// ---- diagrams -------------------------------------------------------------------------------

let diagramSeq = 0;
// Light enough at every step for the dark text of the state's name to stay readable.
const HEAT_FILL = ["#f2f4f7", "#d1e9ff", "#b2ddff", "#84caff", "#53b1fd"];

// overlay adds to a Mermaid stateDiagram-v2 (as GET /v1/definitions/{name}/diagram gives it): a
// line per state with its label (counts), a class per state (heat, or current), and a count on
// each transition's label. labels: state -> text; classes: state -> class name; edges:
// "from>to>event" -> text appended to the edge's label.
function overlay(text, { labels = {}, classes = {}, edges = {} }) {
  const out = [];
  for (const line of text.split("\n")) {
    // An edge's label is its event, with the branch number and "stay" (no `to`) when it has them.
    const m = /^(\s*)(\w+) --> (\w+) : (\w+)( \((\d+|\d+, stay|stay)\))?$/.exec(line);
    const extra = m && edges[m[2] + ">" + m[3] + ">" + m[4]];
    out.push(extra ? line + " · " + extra : line);
    // A label is a description line, which Mermaid shows in place of the name unless the state
    // was declared with its name first (the server does so for states with a description).
    if (out.length === 1) {
      for (const state of Object.keys(labels)) {
        if (!text.includes(`state "${state}" as ${state}\n`)) out.push(`    state "${state}" as ${state}`);
      }
    }
  }
  for (const [state, label] of Object.entries(labels)) out.push(`    ${state} : ${label}`);
  HEAT_FILL.forEach((fill, i) => out.push(`    classDef heat${i} fill:${fill},stroke:#475467,color:#1d2330`));
  out.push("    classDef current fill:#fdb022,stroke:#b54708,stroke-width:3px,color:#1d2330,font-weight:bold");
  out.push("    classDef visited fill:#fef0c7,stroke:#b54708,color:#1d2330");
  for (const [state, cls] of Object.entries(classes)) out.push(`    class ${state} ${cls}`);
  return out.join("\n");
}

// drawDiagram renders Mermaid text into a container; onState(name), when given, makes the states
// clickable. A diagram that fails to draw leaves its text, so nothing is hidden.
async function drawDiagram(container, text, gen, onState) {
  if (!window.mermaid) {
    container.replaceChildren(h("pre", { class: "json" }, text));
    return;
  }
  try {
    const { svg } = await window.mermaid.render("fsmd-diagram-" + ++diagramSeq, text);
    if (gen !== generation) return;
    container.innerHTML = svg; // Mermaid's output, sanitized by it (securityLevel strict)
    container.querySelectorAll("g.node").forEach((g) => {
      const m = /^fsmd-diagram-\d+-state-(\w+)-\d+$/.exec(g.id);
      if (!m || m[1] === "root_start" || m[1] === "root_end") return;
      g.dataset.state = m[1];
      if (onState) {
        g.classList.add("fsmd-link");
        g.addEventListener("click", () => onState(m[1]));
      }
    });
  } catch (e) {
    container.replaceChildren(h("p", { class: "error" }, "The diagram could not be drawn: " + e.message), h("pre", { class: "json" }, text));
  }
}

// childrenLegend explains the dashed border of the states that start children (the server's diagram
// gives them the class children), when the diagram has any.
function childrenLegend(text) {
  return /^\s*class \w+ children$/m.test(text)
    ? h("span", {}, h("span", { class: "swatch children" }), "starts children: a line per group, with its child definition") : null;
}

if (window.mermaid) window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral", flowchart: { htmlLabels: false } });

// ---- pages ----------------------------------------------------------------------------------

async function definitionsPage() {
  document.title = "Definitions · fsmd";
  const defs = await pages("/v1/definitions?limit=1000", 1000);
  const max = Math.max(0, ...defs.map((d) => d.running));
  return [
    h("h1", {}, "Definitions"),
    h("div", { class: "panel" }, table(["Name", "Description", "#Version", "#Running", ""],
      defs.map((d) => [link(ui.definition(d.name), d.name), d.description || "", num(d.version), num(d.running),
        h("div", { class: "bar h" + heat(d.running, max), style: `width:${max ? Math.max(2, (100 * d.running) / max) : 0}px` })]),
      "No definitions are registered: put YAML files in the definitions folder, or PUT /v1/definitions/{name}.")),
  ];
}

async function definitionPage(name, q, gen) {
  document.title = name + " · fsmd";
  const days = Number(q.get("days")) || 7;
  const [def, versions, migrations, me] = await Promise.all([
    api("/v1/definitions/" + encodeURIComponent(name)),
    pages("/v1/definitions/" + encodeURIComponent(name) + "/versions", 1000),
    api("/v1/definitions/" + encodeURIComponent(name) + "/migrations?limit=10"),
    whoami(),
  ]);
  const version = Number(q.get("version")) || def.version;
  const vs = versions;
  const shown = vs.find((v) => v.version === version) || def;
  const diagramText = await api(`/v1/definitions/${encodeURIComponent(name)}/diagram?version=${version}`);

  const diagram = h("div", { class: "diagram", id: "diagram" });
  const stats = h("div", { id: "stats" });
  const liveNote = h("span", { class: "live" }, "live");
  const params = (extra) => Object.assign({}, version !== def.version ? { version } : {}, days !== 7 ? { days } : {}, extra);

  const nodes = [
    h("h1", {}, name),
    h("p", { class: "muted" }, def.description || ""),
    facts([["latest version", String(def.version)], ["running", num((def.running_by_version || []).reduce((a, r) => a + r.count, 0))],
      ["states", String(shown.states.length)], ["hash", h("span", { class: "mono", title: shown.hash }, shown.hash.slice(0, 12))]]),
    h("div", { class: "toolbar" },
      h("span", { class: "versions" }, "Version: ", vs.map((v) =>
        current(link(ui.definition(name, params({ version: v.version })), "v" + v.version), v.version === version))),
      h("span", { class: "windows" }, "Window: ", WINDOWS.map(([label, d]) =>
        current(link(ui.definition(name, params({ days: d })), label), d === days))),
      liveNote),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, `State diagram, version ${version}`), diagram,
        h("div", { class: "legend" }, "Running instances per state:", HEAT_FILL.map((f, i) => h("span", {},
          h("span", { class: "swatch", style: "background:" + f }), ["none", "few", "", "", "most"][i] || "")),
          "· transition labels: event · count in the window · click a state to list its instances", childrenLegend(diagramText))),
      h("section", { class: "panel" }, stats)),
    isAdmin(me) ? bulkPanel(name, def, vs, gen) : null,
    versionsPanel(name, def, vs),
    migrationsPanel(migrations.items || []),
  ];
  show(gen, nodes);

  // The live part: stats (counts per state and transition) over the window, redrawn every LIVE_MS
  // while this page is shown.
  const onState = (state) => navigate(ui.instances({ definition: name, state }));
  let lastText = "";
  const refresh = async () => {
    if (gen !== generation) return false;
    const until = new Date();
    const since = new Date(until - days * 86400000);
    let st;
    try {
      st = await api(`/v1/definitions/${encodeURIComponent(name)}/stats?since=${since.toISOString()}&until=${until.toISOString()}`);
    } catch (e) {
      if (gen === generation) stats.replaceChildren(problem(e));
      return gen === generation;
    }
    if (gen !== generation) return false;
    const text = overlay(diagramText, heatOverlay(shown, st));
    if (text !== lastText) {
      lastText = text;
      await drawDiagram(diagram, text, gen, onState);
    }
    stats.replaceChildren(...statsTables(name, st, days));
    liveNote.textContent = "live · updated " + when(new Date().toISOString()).slice(11);
    return true;
  };
  if (await refresh()) {
    const timer = setInterval(async () => {
      if (document.hidden) return;
      if (!(await refresh())) clearInterval(timer);
    }, LIVE_MS);
  }
}

// heatOverlay colours each state of the shown version by its running instances and puts the
// count of each transition on its label.
function heatOverlay(shown, st) {
  const running = Object.fromEntries((st.states || []).map((s) => [s.state, s.running]));
  const max = Math.max(0, ...Object.values(running));
  const labels = {}, classes = {}, edges = {};
  for (const s of shown.states) {
    const n = running[s.name] || 0;
    if (!s.final) labels[s.name] = n + " running";
    classes[s.name] = "heat" + heat(n, max);
  }
  for (const t of st.transitions || []) edges[t.from + ">" + t.to + ">" + t.event] = num(t.count);
  return { labels, classes, edges };
}

function statsTables(name, st, days) {
  const states = st.states || [], transitions = st.transitions || [], rejections = st.rejections || [];
  const maxT = Math.max(0, ...transitions.map((t) => t.count));
  const window = days === 1 ? "the last 24 h" : `the last ${days} days`;
  return [
    h("h2", {}, "States"),
    table(["State", "#Running", "#Entries", "#Median", "#p95"], states.map((s) => [
      s.state, s.running ? link(ui.instances({ definition: name, state: s.state }), num(s.running)) : "0",
      num(s.entries), duration(s.median_ms), duration(s.p95_ms)])),
    h("p", { class: "muted" }, `Entries (transitions into the state; creations are not counted) and time in state over ${window}; running is now.`),
    h("h2", {}, "Transitions"),
    table(["From", "To", "Event", "#Count", "Heat"], transitions.map((t) => [t.from, t.to, t.event, num(t.count),
      h("div", { class: "bar h" + heat(t.count, maxT), style: `width:${maxT ? Math.max(2, (80 * t.count) / maxT) : 0}px` })]),
    `No transitions in ${window}.`),
    h("h2", {}, "Refused events"),
    table(["Event", "#Count", "By code"], rejections.map((r) => [r.event, num(r.count),
      Object.entries(r.by_code || {}).map(([c, n]) => h("span", { class: "badge bad" }, c + " " + num(n)))]),
    `No refused events in ${window}.`),
  ];
}

function versionsPanel(name, def, vs) {
  const running = Object.fromEntries((def.running_by_version || []).map((r) => [r.version, r.count]));
  return h("section", { class: "panel" }, h("h2", {}, "Versions"),
    table(["Version", "Registered", "Hash", "#Running", ""], vs.slice().reverse().map((v) => [
      link(ui.definition(name, { version: v.version }), "v" + v.version), when(v.created_at),
      h("span", { class: "mono" }, v.hash.slice(0, 12)),
      running[v.version] ? link(ui.instances({ definition: name, version: v.version }), num(running[v.version])) : "0",
      v.version < def.version && running[v.version] ? h("span", { class: "badge warn" }, "not migrated") : ""])));
}

function migrationsPanel(list) {
  return h("section", { class: "panel", id: "migrations" }, h("h2", {}, "Migrations"),
    table(["Migration", "To", "Status", "#Migrated", "#Stranded", "#Total", "Started", "Finished"], list.map((m) => [
      link(ui.migration(m.id), h("span", { class: "mono" }, m.id)), "v" + m.to_version, statusBadge(m.status),
      num(m.migrated), m.stranded ? h("span", { class: "badge warn" }, num(m.stranded)) : "0", num(m.total), when(m.started_at), when(m.finished_at)]),
    "No migrations yet."),
    list.filter((m) => m.result && (m.result.stranded || []).length).slice(0, 1).map((m) => [
      h("h2", { style: "margin-top:12px" }, "Stranded by the latest migration that stranded any"), strandedTable(m.result.stranded)]));
}

function strandedTable(stranded) {
  return table(["From version", "From state", "Reason", "#Count", "Detail", "Sample"], stranded.map((s) => [
    "v" + s.from_version, s.from_state, h("span", { class: "badge warn" }, s.reason), num(s.count), s.detail || "",
    (s.sample || []).map((id, i) => [i ? ", " : "", link(ui.instance(id), id)])]));
}

function statusBadge(status) {
  return h("span", { class: "badge " + (status === "done" ? "final" : status === "failed" ? "bad" : status === "cancelled" ? "warn" : "") }, status);
}

async function migrationPage(id) {
  document.title = "Migration " + id + " · fsmd";
  const m = await api("/v1/migrations/" + encodeURIComponent(id));
  const r = m.result || { moves: [], stranded: [] };
  return [
    h("h1", {}, "Migration ", h("span", { class: "mono" }, m.id)),
    facts([["definition", link(ui.definition(m.definition), m.definition)], ["to version", "v" + m.to_version], ["status", statusBadge(m.status)],
      ["migrated", num(m.migrated)], ["stranded", num(m.stranded)], ["total", num(m.total)], ["started", when(m.started_at)],
      ["finished", when(m.finished_at)]]),
    m.error ? h("div", { class: "error" }, m.error) : null,
    h("section", { class: "panel" }, h("h2", {}, "Moved"), table(["From version", "From state", "To state", "#Count"],
      (r.moves || []).map((mv) => ["v" + mv.from_version, mv.from_state, mv.to_state, num(mv.count)]), m.status === "running" ? "Running…" : "Nothing moved.")),
    h("section", { class: "panel" }, h("h2", {}, "Stranded"), strandedTable(r.stranded || [])),
  ];
}

async function instancesPage(_, q) {
  const filter = {};
  for (const k of ["definition", "state", "version", "parent", "after"]) if (q.get(k)) filter[k] = q.get(k);
  for (const [k, v] of q) if (k.startsWith("ctx.") && v) filter[k] = v; // context filters: the search box's keys
  document.title = "Instances · fsmd";
  const page = await api("/v1/instances?" + new URLSearchParams(Object.assign({ limit: 50 }, filter)));
  const items = page.items || [];
  const title = [filter.parent ? "Children of " + filter.parent : "Instances", filter.definition && "of " + filter.definition,
    filter.version && "on v" + filter.version, filter.state && "in " + filter.state,
    ...Object.keys(filter).filter((k) => k.startsWith("ctx.")).map((k) => "with " + k.slice(4) + " = " + filter[k])].filter(Boolean).join(" ");
  return [
    h("h1", {}, title),
    filter.definition ? h("p", {}, link(ui.definition(filter.definition), "← " + filter.definition)) : null,
    filter.parent ? h("p", {}, link(ui.instance(filter.parent), "← " + filter.parent)) : null,
    h("div", { class: "panel" }, table(["Id", "Definition", "#Version", "State", "Updated"], items.map((i) => [
      link(ui.instance(i.id), h("span", { class: "mono" }, i.id)), i.definition, "v" + i.version,
      [h("span", { class: "badge" + (i.final ? " final" : "") }, i.state), i.suspended ? h("span", { class: "badge warn" }, "suspended") : null,
        i.terminated ? h("span", { class: "badge bad" }, "terminated") : null], when(i.updated_at)]), "No instances match."),
    page.next ? h("p", {}, link(ui.instances(Object.assign({}, filter, { after: page.next })), "Next page →")) : null),
  ];
}

async function instancePage(id, _, gen) {
  document.title = id + " · fsmd";
  const inst = await api("/v1/instances/" + encodeURIComponent(id));
  const [diagramText, history, groups, offer] = await Promise.all([
    api(`/v1/definitions/${encodeURIComponent(inst.definition)}/diagram?version=${inst.version}`),
    pages("/v1/instances/" + encodeURIComponent(id) + "/history?limit=500", HISTORY_MAX),
    childGroups(inst),
    offers(inst),
  ]);
  const visited = new Set(history.flatMap((e) => [e.from, e.to]));
  const classes = {};
  for (const s of visited) if (s && /^\w+$/.test(s) && diagramText.includes(" " + s + " ")) classes[s] = "visited";
  classes[inst.state] = "current";
  const taken = {};
  for (const e of history) if (e.from && e.to && e.source !== "migration" && !e.dropped) {
    const k = e.from + ">" + e.to + ">" + e.event;
    taken[k] = (taken[k] || 0) + 1;
  }
  const edges = Object.fromEntries(Object.entries(taken).map(([k, n]) => [k, n + "×"]));
  const diagram = h("div", { class: "diagram", id: "diagram" });

  const note = sentNote && sentNote.id === inst.id ? sentNote.text : null;
  sentNote = null;
  const nodes = [
    h("h1", {}, h("span", { class: "mono", id: "instance-id" }, inst.id)),
    note ? h("p", { class: "sent", id: "sent", role: "status" }, note) : null,
    inst.parent ? h("p", { id: "parent" }, "child ", String(inst.parent.index), " of group ", h("span", { class: "mono" }, inst.parent.group),
      " of ", link(ui.instance(inst.parent.id), h("span", { class: "mono" }, inst.parent.id))) : null,
    facts([["definition", link(ui.definition(inst.definition, { version: inst.version }), inst.definition + " v" + inst.version)],
      ["state", [h("span", { class: "badge" + (inst.final ? " final" : ""), id: "instance-state" }, inst.state),
        inst.suspended ? h("span", { class: "badge warn", id: "instance-suspended" }, "suspended") : null,
        inst.terminated ? h("span", { class: "badge bad", id: "instance-terminated" }, "terminated") : null]],
      ["revision", String(inst.revision)], ["in state since", when(inst.entered_at) + " (" + relative(inst.entered_at) + ")"],
      ["created", when(inst.created_at)], ["updated", when(inst.updated_at)]]),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Where it is"), diagram,
        h("div", { class: "legend" }, h("span", {}, h("span", { class: "swatch", style: "background:#fdb022" }), "current state"),
          h("span", {}, h("span", { class: "swatch", style: "background:#fef0c7" }), "visited"), "· labels: event · times taken",
          childrenLegend(diagramText))),
      h("div", {},
        h("section", { class: "panel" }, h("h2", {}, "Context"), json(inst.context || {})),
        h("section", { class: "panel" }, h("h2", {}, "Events it takes now"),
          (inst.events || []).length ? (inst.events || []).map((e) => h("span", { class: "badge", style: "margin-right:6px" }, e))
            : h("p", { class: "muted" }, inst.final ? "None: the state is final." : "None.")),
        h("section", { class: "panel", id: "timers" }, h("h2", {}, "Pending timers"),
          table(["Event", "Due", "", "#Attempts", "Last error"], (inst.timers || []).map((t) => [t.event, when(t.due_at), relative(t.due_at),
            t.attempts ? num(t.attempts) : "", t.last_error || ""]), "No timers pending.")))),
    offer ? actionsPanel(inst, offer) : null,
    offer && offer.me.role === "admin" ? adminPanel(inst, offer) : null,
    groups.length ? childrenPanel(inst, groups) : null,
    h("section", { class: "panel", id: "history" }, h("h2", {}, `History (${history.cut ? "the first " + history.length : history.length} transitions)`), timeline(history, inst)),
  ];
  if (show(gen, nodes)) await drawDiagram(diagram, overlay(diagramText, { classes, edges }), gen);
}

// ---- acting: the events a write key may send ----------------------------------------------------

// sentNote is what the last event sent from an instance page did, shown once on the page redrawn.
let sentNote = null; // { id, text }

// mayTake reports whether the caller may take a branch: it has no allow, or allows one of the
// caller's groups (the server's rule: docs/definitions.md, "Actors").
const mayTake = (b, me) => !b.allow || b.allow.some((g) => (me.groups || []).includes(g));

// offers is what the instance page lets the caller send: for a write or admin caller and an
// instance that is not final, the events its state handles with a branch the caller may take, and
// their payload schemas (from the instance's version). null for a read caller: no form at all.
async function offers(inst) {
  if (inst.final) return null;
  const me = await whoami();
  if (!me || (me.role !== "write" && me.role !== "admin")) return null;
  const v = await api(`/v1/definitions/${encodeURIComponent(inst.definition)}/versions/${inst.version}`);
  const state = (v.states || []).find((s) => s.name === inst.state) || { branches: [] };
  const branches = state.branches || [];
  const events = (inst.events || []).filter((ev) => branches.some((b) => b.event === ev && mayTake(b, me)));
  // withheld: the state's other events, and the groups that may take them (why they are not offered).
  const withheld = (inst.events || []).filter((ev) => !events.includes(ev)).map((ev) => ({ event: ev,
    groups: [...new Set(branches.filter((b) => b.event === ev).flatMap((b) => b.allow || []))] }));
  return { me, events, withheld, payloads: v.payloads || {}, branches, states: v.states || [] };
}

function actionsPanel(inst, offer) {
  return h("section", { class: "panel", id: "actions" }, h("h2", {}, "Send an event"),
    h("p", { class: "muted" }, `As ${offer.me.name || "the anonymous user"} (${offer.me.role}). Explain shows what would happen, and sends nothing.`),
    offer.events.length ? h("div", { class: "event-forms" }, offer.events.map((ev) => eventForm(inst, ev, offer)))
      : h("p", { class: "muted" }, "None: no event of this state has a branch you may take."),
    offer.withheld.length ? h("ul", { class: "muted", id: "withheld" }, offer.withheld.map((w) =>
      h("li", { "data-event": w.event }, `${w.event}: not offered, only ${w.groups.join(", ")} may take it (allow)`))) : null);
}

// eventForm is one event's form: a field per payload property, Explain and Send. Send names the
// revision shown (If-Match: an instance that moved on meanwhile is refused, not changed blindly) and
// carries an Idempotency-Key made with the form, so that a send repeated after a lost answer applies
// once.
function eventForm(inst, ev, offer) {
  const schema = offer.payloads[ev] || { properties: {} };
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties || {}).map(([name, prop]) => payloadField(ev, name, prop, required.has(name)));
  const targets = [...new Set(offer.branches.filter((b) => b.event === ev && mayTake(b, offer.me)).map((b) => b.to))];
  const outcome = h("div", { class: "outcome" });
  const key = "console-" + Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  const path = (what) => "/v1/instances/" + encodeURIComponent(inst.id) + "/" + what;
  const explainButton = h("button", { type: "button", class: "secondary" }, "Explain");
  const sendButton = h("button", { type: "submit" }, "Send");

  // run reads the payload and makes one request with the buttons disabled; a payload that does not
  // read (a JSON field) or a refusal is shown in the form.
  const run = async (fn) => {
    let payload;
    try {
      payload = Object.fromEntries(fields.map((f) => [f.name, f.read()]).filter(([, v]) => v !== undefined));
    } catch (e) {
      outcome.replaceChildren(h("div", { class: "error" }, e.message));
      return;
    }
    explainButton.disabled = sendButton.disabled = true;
    outcome.replaceChildren(h("p", { class: "muted" }, "…"));
    try {
      await fn({ event: ev, payload });
    } catch (e) {
      outcome.replaceChildren(problem(e));
    } finally {
      explainButton.disabled = sendButton.disabled = false;
    }
  };
  explainButton.addEventListener("click", () => run(async (body) => {
    outcome.replaceChildren(explanation(await api(path("explain"), { body })));
  }));
  const form = h("form", { class: "event", "data-event": ev, onsubmit: (e) => {
    e.preventDefault();
    run(async (body) => {
      const res = await api(path("events"), { body, headers: { "If-Match": String(inst.revision), "Idempotency-Key": key } });
      const t = res.transition;
      sentNote = { id: inst.id, text: `Sent ${t.event}: ${t.from} → ${t.to} (#${t.seq}).` };
      render();
    });
  } },
  h("h3", {}, ev, h("span", { class: "muted" }, " → " + targets.join(" | "))),
  fields.length ? fields.map((f) => f.node) : h("p", { class: "muted" }, "No payload."),
  h("div", { class: "buttons" }, explainButton, sendButton), outcome);
  return form;
}

// payloadField is the input for one property of a payload's JSON Schema, and how to read its value:
// undefined leaves the field out (the server then takes its default, or its zero value: null for an
// optional field, whose type lists "null"). Text is sent as typed, so that what the form shows is
// what is sent, except that an optional field left empty is left out; a list, an object or an any
// is JSON. An enumeration is a select of its values.
function payloadField(ev, name, prop, required) {
  const id = "f-" + ev + "-" + name;
  const types = Array.isArray(prop.type) ? prop.type : [prop.type];
  const optional = types.includes("null");
  const base = types.find((t) => t && t !== "null");
  const kind = prop.format === "date-time" ? "time" : prop["x-fsmd-type"] === "duration" ? "duration" : base || "any";
  const has = prop.default !== undefined && prop.default !== null;
  let input, read;
  if (Array.isArray(prop.enum)) {
    // The options are the values by index, so that an int enum is sent as a number.
    const values = prop.enum.filter((v) => v !== null);
    const none = required && !optional ? null : h("option", { value: "" }, optional ? "(none)" : "(default)");
    input = h("select", { id, name, required }, none,
      values.map((v, i) => h("option", { value: String(i), selected: has && prop.default === v }, String(v))));
    read = () => (input.value === "" ? undefined : values[Number(input.value)]);
    return fieldNode(id, name, prop, required, optional, "one of " + values.length, input, read);
  }
  switch (kind) {
    case "boolean":
      input = h("input", { id, name, type: "checkbox", checked: prop.default === true });
      read = () => input.checked;
      break;
    case "integer":
    case "number":
      input = h("input", { id, name, type: "number", step: kind === "integer" ? "1" : "any", required, value: has ? prop.default : null });
      read = () => (input.value === "" ? undefined : Number(input.value));
      break;
    case "time":
      // datetime-local is the user's local time, sent as RFC 3339 in UTC.
      input = h("input", { id, name, type: "datetime-local", step: "1", required, value: has ? localTime(prop.default) : null });
      read = () => (input.value === "" ? undefined : new Date(input.value).toISOString());
      break;
    case "string":
    case "duration":
      input = h("input", { id, name, type: "text", required, value: has ? prop.default : null, placeholder: kind === "duration" ? "90m, 2h, 3d" : null });
      read = () => (optional && input.value === "" ? undefined : input.value);
      break;
    default: // array, object, any
      input = h("textarea", { id, name, rows: 3, required, placeholder: kind === "array" ? "[ ]" : kind === "object" ? "{ }" : "JSON" },
        has ? JSON.stringify(prop.default) : "");
      read = () => {
        if (input.value.trim() === "") return undefined;
        try {
          return JSON.parse(input.value);
        } catch (e) {
          throw new Error(`${name}: not JSON: ${e.message}`);
        }
      };
  }
  return fieldNode(id, name, prop, required, optional, kind === "time" ? "time (local)" : kind, input, read);
}

// fieldNode is a payload field's label (its name, * when required, its kind, "optional: empty is
// null" when it takes null), its input and its description.
function fieldNode(id, name, prop, required, optional, kind, input, read) {
  const node = h("div", { class: "field" },
    h("label", { for: id }, name, required ? h("span", { class: "req", title: "required" }, " *") : null,
      h("span", { class: "muted" }, " " + kind + (optional ? " (optional: empty is null)" : ""))),
    input, prop.description ? h("small", { class: "muted" }, prop.description) : null);
  return { name, node, read };
}

// localTime is an RFC 3339 time as a datetime-local value ("" for the zero time, or none).
function localTime(iso) {
  const d = new Date(iso);
  if (isNaN(d) || d.getFullYear() < 1000) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// explanation shows what POST .../explain answered: where the event would lead (or why it would be
// refused), each branch with its guard, and the context after.
function explanation(x) {
  return h("div", { class: "explanation" },
    x.error ? h("p", { class: "refused" }, h("span", { class: "badge bad" }, x.error.code), " would be refused: ", x.error.detail)
      : h("p", { class: "accepted" }, "Would go to ", h("span", { class: "badge", "data-to": x.to }, x.to), " (nothing was sent)."),
    (x.branches || []).length ? table(["#Branch", "To", "Guard", "Result", "Allowed", "Taken"], x.branches.map((b, i) => [String(i),
      b.to, b.guard ? h("span", { class: "mono" }, b.guard) : "–", b.result === undefined ? "–" : String(b.result),
      b.allowed ? "yes" : h("span", { class: "badge bad" }, "no"), b.taken ? h("span", { class: "badge final" }, "taken") : ""])) : null,
    x.context ? h("details", {}, h("summary", {}, "context after"), json(x.context)) : null);
}

// ---- operating: what an admin key may do (docs/operators.md) ------------------------------------

// isAdmin: the caller (GET /v1/me) has the admin role, which operating needs.
const isAdmin = (me) => !!me && me.role === "admin";

// opRun makes one request from an operator's form with its buttons disabled, and shows a refusal's
// detail in the form's outcome.
async function opRun(outcome, buttons, fn) {
  buttons.forEach((b) => (b.disabled = true));
  outcome.replaceChildren(h("p", { class: "muted" }, "…"));
  try {
    await fn();
  } catch (e) {
    outcome.replaceChildren(problem(e));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

// readJSON reads a JSON textarea: undefined when empty; an object when one is wanted.
function readJSON(input, what) {
  const text = input.value.trim();
  if (text === "") return undefined;
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${what}: not JSON: ${e.message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${what}: a JSON object is wanted, like {"field": "value"}`);
  return v;
}

function opField(id, label, input, note) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input, note ? h("small", { class: "muted" }, note) : null);
}

const reasonInput = (id, required) => h("input", { id, name: "reason", type: "text", maxlength: 1000, required, autocomplete: "off",
  placeholder: required ? "why (kept in its history)" : "why (optional)" });

// adminPanel is an instance's operator section (an admin key, an instance that is not final):
// suspend or resume, terminate (confirmed in the page), and repair to any state of its version,
// each with a reason. Each redraws the page once done, or shows why it was refused.
function adminPanel(inst, offer) {
  const path = (what) => "/v1/instances/" + encodeURIComponent(inst.id) + "/" + what;
  const done = (text) => {
    sentNote = { id: inst.id, text };
    render();
  };

  // Suspend, or resume a suspended one.
  const pauseReason = reasonInput("op-pause-reason", !inst.suspended);
  const pauseButton = h("button", { type: "submit" }, inst.suspended ? "Resume" : "Suspend");
  const pauseOutcome = h("div", { class: "outcome" });
  const pause = h("form", { class: "op", id: inst.suspended ? "op-resume" : "op-suspend", onsubmit: (e) => {
    e.preventDefault();
    const reason = pauseReason.value.trim();
    opRun(pauseOutcome, [pauseButton], async () => {
      if (inst.suspended) {
        await api(path("resume"), { body: reason ? { reason } : {} });
        done("Resumed" + (reason ? ": " + reason : "."));
      } else {
        await api(path("suspend"), { body: { reason } });
        done("Suspended: " + reason);
      }
    });
  } },
  h("h3", {}, inst.suspended ? "Resume" : "Suspend"),
  h("p", { class: "muted" }, inst.suspended ? "It is suspended: it refuses every event and its timers wait. Resumed, the timers that came due fire once."
    : "Suspended, it refuses every event, its timers wait and messages to it are held, until resumed."),
  opField("op-pause-reason", inst.suspended ? "reason" : ["reason", h("span", { class: "req", title: "required" }, " *")], pauseReason),
  h("div", { class: "buttons" }, pauseButton), pauseOutcome);

  // Terminate: final where it is. A second click confirms (in the page: no dialog).
  const endReason = reasonInput("op-terminate-reason", true);
  const endButton = h("button", { type: "submit", class: "danger" }, "Terminate");
  const endOutcome = h("div", { class: "outcome" });
  const end = h("form", { class: "op", id: "op-terminate", onsubmit: (e) => {
    e.preventDefault();
    const reason = endReason.value.trim();
    const yes = h("button", { type: "button", class: "danger", id: "op-terminate-confirm" }, "Yes, terminate");
    const no = h("button", { type: "button", class: "secondary" }, "No");
    no.addEventListener("click", () => endOutcome.replaceChildren());
    yes.addEventListener("click", () => opRun(endOutcome, [endButton, yes, no], async () => {
      await api(path("terminate"), { body: { reason } });
      done("Terminated: " + reason);
    }));
    endOutcome.replaceChildren(h("div", { class: "confirm" },
      h("p", {}, "Terminate ", h("span", { class: "mono" }, inst.id), " for good? It becomes final in ", inst.state,
        ", its timers are cancelled and its running children terminated with it."), h("div", { class: "buttons" }, yes, no)));
  } },
  h("h3", {}, "Terminate"),
  h("p", { class: "muted" }, "Final where it is: it takes no event any more, and its parent is not told it ended."),
  opField("op-terminate-reason", ["reason", h("span", { class: "req", title: "required" }, " *")], endReason),
  h("div", { class: "buttons" }, endButton), endOutcome);

  // Repair: into a state of its version, with context fields merged over its context.
  const stateSelect = h("select", { id: "op-repair-state", name: "state", required: true },
    h("option", { value: "" }, "choose a state"),
    offer.states.map((s) => h("option", { value: s.name }, s.name + (s.final ? " (final)" : "") + (s.name === inst.state ? " (now)" : ""))));
  const ctxInput = h("textarea", { id: "op-repair-context", name: "context", rows: 3, placeholder: '{"field": "value"}' });
  const fixReason = reasonInput("op-repair-reason", true);
  const fixButton = h("button", { type: "submit" }, "Repair");
  const fixOutcome = h("div", { class: "outcome" });
  const fix = h("form", { class: "op", id: "op-repair", onsubmit: (e) => {
    e.preventDefault();
    let context;
    try {
      context = readJSON(ctxInput, "context");
    } catch (err) {
      fixOutcome.replaceChildren(h("div", { class: "error" }, err.message));
      return;
    }
    const body = { state: stateSelect.value, reason: fixReason.value.trim() };
    if (context) body.context = context;
    opRun(fixOutcome, [fixButton], async () => {
      const res = await api(path("repair"), { body });
      const t = res.transition || {};
      done(`Repaired: ${t.from || inst.state} → ${t.to || body.state}${t.seq ? " (#" + t.seq + ")" : ""}.`);
    });
  } },
  h("h3", {}, "Repair"),
  h("p", { class: "muted" }, "Enters the state as a transition would, whatever its handlers say; the context fields given are merged over its context."),
  opField("op-repair-state", ["state", h("span", { class: "req", title: "required" }, " *")], stateSelect),
  opField("op-repair-context", "context fields (JSON, optional)", ctxInput),
  opField("op-repair-reason", ["reason", h("span", { class: "req", title: "required" }, " *")], fixReason),
  h("div", { class: "buttons" }, fixButton), fixOutcome);

  return h("section", { class: "panel", id: "admin" }, h("h2", {}, "Operate"),
    h("p", { class: "muted" }, `As ${offer.me.name || "the anonymous user"} (admin). Each is a row in its history, with the reason.`),
    h("div", { class: "op-forms" }, pause, end, fix));
}

// bulkPanel is a definition's bulk section (an admin key): a filter (state, version, context
// fields), an event with its payload or an action with a reason; Plan shows what it would do to
// the running instances that match, counted (nothing written), with a button to run that very
// request, whose progress is then read every BULK_POLL_MS until it ends. Changing the form drops
// the plan: what runs is always what was planned.
function bulkPanel(name, def, vs, gen) {
  const states = (def.states || []).filter((s) => !s.final);
  const stateSelect = h("select", { id: "bulk-state", name: "state" }, h("option", { value: "" }, "any running state"),
    states.map((s) => h("option", { value: s.name }, s.name)));
  const versionSelect = h("select", { id: "bulk-version", name: "version" }, h("option", { value: "" }, "any version"),
    vs.map((v) => h("option", { value: String(v.version) }, "v" + v.version)));
  const ctxInput = h("textarea", { id: "bulk-ctx", name: "ctx", rows: 2, placeholder: '{"amount[gte]": 100, "customer.tier": "gold"}' });
  const whatSelect = h("select", { id: "bulk-what", name: "what", required: true },
    h("optgroup", { label: "Send an event" }, (def.events || []).map((ev) => h("option", { value: "event:" + ev }, ev))),
    h("optgroup", { label: "Act" }, ["suspend", "resume", "terminate"].map((a) => h("option", { value: "action:" + a }, a))));
  const payloadInput = h("textarea", { id: "bulk-payload", name: "payload", rows: 2, placeholder: '{"reason": "price error"}' });
  const reasonField = reasonInput("bulk-reason", false);
  reasonField.placeholder = "why (required to suspend or terminate)";
  const planButton = h("button", { type: "submit", id: "bulk-plan-button" }, "Plan");
  const planBox = h("div", { id: "bulk-plan" });
  const runBox = h("div", { id: "bulk-run" });
  const payloadField = opField("bulk-payload", "payload (JSON, for an event)", payloadInput);
  const showPayload = () => (payloadField.hidden = !whatSelect.value.startsWith("event:"));
  whatSelect.addEventListener("change", showPayload);
  showPayload();

  const request = () => {
    const filter = {};
    if (stateSelect.value) filter.state = stateSelect.value;
    if (versionSelect.value) filter.version = Number(versionSelect.value);
    const ctx = readJSON(ctxInput, "context filters");
    // Values go as text, which the server reads as the field's type (as GET /v1/instances's ctx.
    // parameters): a JSON number in filter.ctx is refused by the server as it is now.
    if (ctx) filter.ctx = Object.fromEntries(Object.entries(ctx).map(([k, v]) => [k, typeof v === "number" || typeof v === "boolean" ? String(v) : v]));
    const [kind, what] = [whatSelect.value.slice(0, whatSelect.value.indexOf(":")), whatSelect.value.slice(whatSelect.value.indexOf(":") + 1)];
    const body = { filter };
    if (kind === "event") {
      body.event = what;
      const payload = readJSON(payloadInput, "payload");
      if (payload) body.payload = payload;
    } else body.action = what;
    const reason = reasonField.value.trim();
    if (reason) body.reason = reason;
    return body;
  };

  const form = h("form", { class: "op bulk", id: "bulk-form", oninput: () => planBox.replaceChildren(), onchange: () => planBox.replaceChildren(),
    onsubmit: (e) => {
      e.preventDefault();
      let body;
      try {
        body = request();
      } catch (err) {
        planBox.replaceChildren(h("div", { class: "error" }, err.message));
        return;
      }
      opRun(planBox, [planButton], async () => {
        const plan = await api("/v1/definitions/" + encodeURIComponent(name) + "/bulk/plan", { body });
        if (gen !== generation) return;
        const run = h("button", { type: "button", id: "bulk-run-button", disabled: !plan.total }, `Run on ${num(plan.total)} instances`);
        run.addEventListener("click", () => {
          run.disabled = true;
          startBulk(name, body, runBox, gen).catch(() => (run.disabled = false)); // started, the plan is used up
        });
        planBox.replaceChildren(h("div", { class: "plan" },
          h("p", { id: "bulk-total" }, plan.total === 1 ? "1 running instance matches." : `${num(plan.total)} running instances match.`,
            " ", h("span", { class: "muted" }, "A plan: nothing was written.")),
          outcomesTable(plan.outcomes || []), h("div", { class: "buttons" }, run)));
      });
    } },
  h("div", { class: "bulk-fields" },
    h("fieldset", {}, h("legend", {}, "Which running instances"),
      opField("bulk-state", "state", stateSelect), opField("bulk-version", "version", versionSelect),
      opField("bulk-ctx", "context fields (JSON)", ctxInput, "a path and a value; [gt], [gte], [lt] or [lte] after a path for a range")),
    h("fieldset", {}, h("legend", {}, "What to do"),
      opField("bulk-what", "event or action", whatSelect), payloadField, opField("bulk-reason", "reason", reasonField))),
  h("div", { class: "buttons" }, planButton, h("span", { class: "muted" }, "Plan first: it shows what would happen, then offers to run it.")));
  return h("section", { class: "panel", id: "bulk" }, h("h2", {}, "Bulk"), form, planBox, runBox);
}

// outcomesTable is a plan's (or a run's) outcomes: per from state, where the event took them or
// why it was refused, with the first ids.
function outcomesTable(outcomes) {
  return table(["From state", "To state or refusal", "#Count", "Sample"], outcomes.map((o) => [o.from_state,
    o.code ? h("span", { class: "badge bad" }, o.code) : h("span", { class: "badge" }, o.to_state),
    num(o.count), (o.sample || []).map((id, i) => [i ? ", " : "", link(ui.instance(id), h("span", { class: "mono" }, id))])]),
  "No running instance matches.");
}

// startBulk runs a planned request and follows it in box until it is no longer running (or the
// page is left), with Cancel while it runs.
async function startBulk(name, body, box, gen) {
  let b;
  try {
    b = await api("/v1/definitions/" + encodeURIComponent(name) + "/bulk", { body });
  } catch (e) {
    box.replaceChildren(problem(e));
    throw e;
  }
  const cancel = h("button", { type: "button", class: "danger", id: "bulk-cancel" }, "Cancel");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      draw(await api("/v1/bulk/" + encodeURIComponent(b.id) + "/cancel", { body: {} }));
    } catch (e) {
      box.append(problem(e));
    }
  });
  const draw = (x) => {
    b = x;
    box.replaceChildren(h("div", { class: "progress" },
      h("p", { id: "bulk-status" }, "Bulk ", h("span", { class: "mono" }, x.id), " ", statusBadge(x.status), " ",
        h("span", { id: "bulk-counts" }, `applied ${num(x.applied)} · refused ${num(x.refused)} · of ${num(x.total)}`),
        " ", x.status === "running" ? cancel : null),
      x.total ? h("div", { class: "meter" }, h("div", { style: `width:${Math.min(100, (100 * (x.applied + x.refused)) / x.total)}%` })) : null,
      x.error ? h("div", { class: "error" }, x.error) : null,
      outcomesTable(x.outcomes || [])));
  };
  draw(b);
  while (b.status === "running") {
    await new Promise((r) => setTimeout(r, BULK_POLL_MS));
    if (gen !== generation) return;
    try {
      draw(await api("/v1/bulk/" + encodeURIComponent(b.id)));
    } catch (e) {
      box.append(problem(e)); // shown once; the next read may work
    }
  }
}

// ---- dead letters -----------------------------------------------------------------------------------

// deadLettersPage lists the webhook deliveries given up on (GET /v1/outbox/dead), with a Re-drive
// button on each for an admin key (POST /v1/outbox/dead/{id}/redrive: another round of attempts).
async function deadLettersPage(_, q) {
  document.title = "Dead letters · fsmd";
  const filter = {};
  for (const k of ["definition", "webhook"]) if (q.get(k)) filter[k] = q.get(k);
  const [items, me] = await Promise.all([pages("/v1/outbox/dead?" + new URLSearchParams(Object.assign({ limit: 100 }, filter)), 1000), whoami()]);
  const admin = isAdmin(me);
  const head = ["Delivery", "Instance", "#Seq", "Webhook", "#Attempts", "Last error", "Last try", "Body"].concat(admin ? [""] : []);
  return [
    h("h1", {}, "Dead letters", filter.definition ? " of " + filter.definition : "", filter.webhook ? " to " + filter.webhook : ""),
    h("p", { class: "muted" }, "Webhook deliveries given up on: kept, and not tried again until re-driven.",
      admin ? " Re-driving one gives it another round of attempts, due now." : ""),
    h("div", { class: "panel", id: "dead-letters" }, table(head, items.map((d) => {
      const row = [h("span", { class: "mono" }, d.id), link(ui.instance(d.instance), h("span", { class: "mono" }, d.instance)), num(d.seq),
        [d.webhook, h("div", { class: "muted mono" }, d.url)], num(d.attempts), d.last_error || "", when(d.last_try_at),
        h("details", {}, h("summary", {}, "body"), json(d.body))];
      if (admin) row.push(redriveButton(d));
      return row;
    }), "No dead letters.")),
    items.cut ? h("p", { class: "muted" }, `Only the first ${num(items.length)} are shown.`) : null,
  ];
}

function redriveButton(d) {
  const cell = h("div", { class: "redrive" });
  const button = h("button", { type: "button", class: "redrive", "data-id": d.id }, "Re-drive");
  button.addEventListener("click", () => opRun(cell, [button], async () => {
    await api("/v1/outbox/dead/" + encodeURIComponent(d.id) + "/redrive", { body: {} });
    button.remove();
    cell.replaceChildren(h("span", { class: "badge final" }, "re-driven"));
  }));
  return [button, cell];
}

// ---- the worklist ---------------------------------------------------------------------------------

// worklistPage lists what waits for the caller (GET /v1/worklist): the instances whose state
// assigns them, oldest due first, with the events the caller may send now.
async function worklistPage() {
  document.title = "Worklist · fsmd";
  const items = await pages("/v1/worklist", 1000);
  return [
    h("h1", {}, "Worklist"),
    h("p", { class: "muted" }, "Instances waiting in a state that assigns them, the oldest due first."),
    h("div", { class: "panel", id: "worklist" }, table(["Instance", "Definition", "State", "Assignees", "Due", "Events you may send"],
      items.map((it) => worklistRow(it)), "Nothing is waiting.")),
    items.cut ? h("p", { class: "muted" }, `Only the first ${num(items.length)} are shown.`) : null,
  ];
}

function worklistRow(it) {
  const i = it.instance || {};
  return [link(ui.instance(i.id), h("span", { class: "mono" }, i.id)), i.definition + " v" + i.version,
    h("span", { class: "badge" + (i.final ? " final" : "") }, i.state), (i.assignees || []).join(", ") || "–",
    it.due_at ? h("span", { class: it.overdue ? "due overdue" : "due" }, when(it.due_at), " (" + relative(it.due_at) + ")",
      it.overdue ? h("span", { class: "badge bad" }, "overdue") : null) : "–",
    (it.events || []).map((e) => h("span", { class: "badge", style: "margin-right:6px" }, e))];
}

// ---- children ---------------------------------------------------------------------------------

// childGroups reads what an instance page shows of its children. For each group of the current entry
// of its state (inst.children, with the counts the server keeps), one page of up to CHILDREN_READ of
// the group's children (GET /v1/instances/{id}/children?group=). An instance whose state has no
// groups may still have children, started by a state it has left: then one page of all of them,
// grouped by their group. Groups come in name order; an empty list when there are no children.
async function childGroups(inst) {
  const path = "/v1/instances/" + encodeURIComponent(inst.id) + "/children?limit=" + CHILDREN_READ;
  const current = Object.keys(inst.children || {}).sort();
  if (current.length) {
    return Promise.all(current.map(async (name) => {
      const page = await api(path + "&group=" + encodeURIComponent(name));
      return { name, counts: inst.children[name], items: page.items || [], next: page.next || null };
    }));
  }
  const page = await api(path);
  const byGroup = new Map();
  for (const c of page.items || []) {
    const name = c.parent ? c.parent.group : "";
    if (!byGroup.has(name)) byGroup.set(name, []);
    byGroup.get(name).push(c);
  }
  // A page that was cut may have cut a group: its list goes on from its last child read.
  return [...byGroup.keys()].sort().map((name) => {
    const items = byGroup.get(name);
    return { name, counts: null, items, next: page.next ? items[items.length - 1].id : null };
  });
}

// entryOf is the revision of the parent's entry that started child c of group (its id is
// <parent>.<group>.<revision>.<index>); null when the id is not of that form.
function entryOf(inst, group, c) {
  const prefix = inst.id + "." + group + ".";
  const m = c.id.startsWith(prefix) && /^(\d+)\.\d+$/.exec(c.id.slice(prefix.length));
  return m ? Number(m[1]) : null;
}

function childrenPanel(inst, groups) {
  const earlier = groups.every((g) => !g.counts);
  return h("section", { class: "panel", id: "children" }, h("h2", {}, "Children"),
    earlier ? h("p", { class: "muted" }, "Started by a state it has left: its current state starts none.") : null,
    h("ul", { class: "tree" }, groups.map((g) => childGroupView(inst, g))),
    h("p", {}, link(ui.instances({ parent: inst.id }), "All its children, as a list →")));
}

// childGroupView is one group: its counts, its children's counts by state, and its children.
// A group of the current entry counts the children of that entry (the page may also hold those an
// earlier entry of the same state started: they are listed, marked, and not counted).
function childGroupView(inst, g) {
  const latest = Math.max(-1, ...g.items.map((c) => entryOf(inst, g.name, c) ?? -1));
  const counted = g.counts ? g.items.filter((c) => entryOf(inst, g.name, c) === latest) : g.items;
  const counts = g.counts || { total: counted.length, running: counted.filter((c) => !c.final).length, final: counted.filter((c) => c.final).length };
  const byState = new Map();
  for (const c of counted) {
    const s = byState.get(c.state) || { state: c.state, final: c.final, n: 0 };
    s.n++;
    byState.set(c.state, s);
  }
  const states = [...byState.values()].sort((a, b) => a.final - b.final || b.n - a.n || (a.state < b.state ? -1 : 1));
  const notes = [
    g.next ? `Counts by state are of the first ${num(g.items.length)} children read (one page of the list), not of all of them.` : null,
    g.counts && counted.length < g.items.length ? `${num(g.items.length - counted.length)} children of earlier entries of the state are listed, not counted.` : null,
    !g.counts ? "Counted from the children read." : null,
  ].filter(Boolean);

  const list = h("ul", { class: "children" });
  let shown = 0, buffer = g.items.slice(), after = g.next;
  const more = h("button", { class: "more", type: "button" }, "more");
  const showMore = async () => {
    if (shown >= buffer.length && after) {
      more.disabled = true;
      try {
        const page = await api("/v1/instances/" + encodeURIComponent(inst.id) + "/children?" +
          new URLSearchParams({ group: g.name, limit: CHILDREN_READ, after }));
        buffer = buffer.concat(page.items || []);
        after = page.next || null;
      } catch (e) {
        more.replaceWith(problem(e));
        return;
      }
      more.disabled = false;
    }
    const next = buffer.slice(shown, shown + CHILDREN_SHOWN);
    shown += next.length;
    list.append(...next.map((c) => h("li", { "data-child": c.id },
      link(ui.instance(c.id), h("span", { class: "mono" }, c.id)), " ",
      h("span", { class: "badge" + (c.final ? " final" : "") }, c.state),
      c.parent ? h("span", { class: "muted" }, " #" + c.parent.index) : null,
      g.counts && entryOf(inst, g.name, c) !== latest ? h("span", { class: "muted" }, " · an earlier entry") : null)));
    more.hidden = !(shown < buffer.length || after);
    more.textContent = `more (${num(shown)} of ${after ? "more than " + num(buffer.length) : num(buffer.length)} shown)`;
  };
  more.addEventListener("click", showMore);
  showMore();

  return h("li", { class: "group", "data-group": g.name },
    h("h3", {}, "Group ", h("span", { class: "mono" }, g.name)),
    facts([["total", num(counts.total)], ["running", num(counts.running)], ["final", num(counts.final)]]),
    table(["State", "#Children"], states.map((s) => [h("span", { class: "badge" + (s.final ? " final" : "") }, s.state), num(s.n)]),
      "No children read."),
    notes.map((n) => h("p", { class: "muted note" }, n)),
    list, more);
}

function timeline(history, inst) {
  const created = h("li", { class: "created" }, h("div", { class: "when" }, when(inst.created_at)), h("div", { class: "what" }, "created"));
  return h("ol", { class: "timeline" }, history.slice().reverse().map((e) => h("li", { class: e.dropped ? "dropped" : e.source === "migration" ? "migration" : null },
    h("div", { class: "when" }, "#" + e.seq + " · " + when(e.at) + " · " + e.source + (e.actor ? " by " + e.actor : "") + " · v" + e.definition_version),
    h("div", { class: "what" }, e.event, " ", h("span", { class: "muted" }, e.from + " → " + e.to)),
    e.dropped ? h("div", {}, h("span", { class: "badge warn" }, "dropped"), " ", e.dropped) : null,
    e.source === "migration" && e.from_version ? h("div", { class: "muted" }, "migrated from v" + e.from_version) : null,
    h("details", {}, h("summary", {}, "payload and context"),
      h("div", { class: "muted" }, "payload"), json(e.payload || {}),
      h("div", { class: "muted" }, "context after"), json(e.context_after || {}),
      e.request_id ? h("div", { class: "muted" }, "request " + e.request_id) : null))), created);
}

showKeyState();
render();
