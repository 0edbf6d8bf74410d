// songspace's page: plain JS over the JSON API (/api/...), no build step, nothing from outside.
// Sections: helpers · tracks and lists · player · search · similar + explain · radio ·
// journey · map · index status · start-up.
"use strict";

const $ = (sel) => document.querySelector(sel);
const PAGE = 50;

const state = {
  tracks: new Map(),        // id -> the latest row seen for it (any list, or the map)
  lists: { search: [], similar: [], radio: [], journey: [], selection: [] },
  searchOffset: 0, searchTotal: 0, searchQuery: "",
  similarQuery: null,       // the track "more like this" is about
  likes: [], dislikes: [],  // ids
  pathA: null, pathB: null, // ids
  playing: null,            // id
  queue: null,              // {list, index}: what "next" plays
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async function api(url, options = {}) {
  let response;
  try {
    response = await fetch(url, {
      ...options,
      headers: { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}), ...(options.headers || {}) },
    });
  } catch (e) {
    toast("The songspace server does not answer. Is it still running?");
    throw e;
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (typeof body.detail === "string") message = body.detail;
      else if (Array.isArray(body.detail)) message = body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    } catch (_) { /* not JSON */ }
    if (response.status === 401) message += " (sign in again: reload the page)";
    toast(message);
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

let toastTimer = null;
function toast(message, kind = "error") {
  const el = $("#toast");
  el.textContent = message;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 7000 : 3000);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k === "title" || k === "aria-label" || k === "role" || k === "style") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function clock(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(r).padStart(2, "0")}`;
}

function baseName(path) {
  return (path || "").split(/[\\/]/).pop();
}

function titleOf(t) {
  return t.title || baseName(t.path) || `track ${t.id}`;
}

function labelOf(t) {
  if (!t) return "";
  return t.artist ? `${t.artist} – ${titleOf(t)}` : titleOf(t);
}

function remember(rows) {
  for (const r of rows) state.tracks.set(r.id, { ...(state.tracks.get(r.id) || {}), ...r });
  return rows;
}

function track(id) {
  return state.tracks.get(id) || { id };
}

// The server writes the playlist; a list too long for one URL (the server takes request lines
// up to ~16 KB) is written here instead, in the same form, as a file in memory.
const URL_LIMIT = 6000;
const blobUrls = {};

function m3u8Url(ids, rows = null, name = "") {
  const url = `/api/playlist.m3u8?ids=${ids.join(",")}`;
  if (url.length <= URL_LIMIT || !rows) return url;
  const lines = ["#EXTM3U"];
  for (const t of rows) {
    const name = t.artist && t.title ? `${t.artist} - ${t.title}` : labelOf(t);
    lines.push(`#EXTINF:${t.duration == null ? -1 : Math.round(t.duration)},${name.replace(/\s*\n\s*/g, " ")}`);
    lines.push(`${location.origin}/api/tracks/${t.id}/audio`);
  }
  if (blobUrls[name]) URL.revokeObjectURL(blobUrls[name]);
  blobUrls[name] = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "audio/x-mpegurl" }));
  return blobUrls[name];
}

// ---------------------------------------------------------------------------------------------
// Tracks and lists: one row shape everywhere, one click handler for every list
// ---------------------------------------------------------------------------------------------

function trackRow(t, listName, index) {
  const sub = [t.artist, t.album].filter(Boolean).join(" · ");
  const extras = [];
  if (t.copy_of_query) extras.push(el("span", { class: "pill warn", title: "Another file of the same recording", text: "same recording" }));
  if (t.copies && t.copies.length) extras.push(el("span", { class: "pill", title: `Other files of this recording: ${t.copies.join(", ")}`, text: `+${t.copies.length} cop${t.copies.length > 1 ? "ies" : "y"}` }));
  const actions = el("div", { class: "actions" },
    el("button", { "data-action": "similar", title: "More like this", text: "≈" }),
    el("button", { "data-action": "like", title: "Like: a seed for radio", text: "♥", class: state.likes.includes(t.id) ? "on" : "" }),
    el("button", { "data-action": "dislike", title: "Dislike: radio keeps away from it", text: "✕", class: state.dislikes.includes(t.id) ? "on" : "" }),
    el("button", { "data-action": "set-a", title: "Start a journey here (A)", text: "A", class: state.pathA === t.id ? "on" : "" }),
    el("button", { "data-action": "set-b", title: "End a journey here (B)", text: "B", class: state.pathB === t.id ? "on" : "" }),
  );
  if (listName === "similar") actions.prepend(el("button", { "data-action": "explain", class: "explain-btn", title: "Which moments of the two tracks sound alike", text: "why?" }));
  return el("li", { class: `track${state.playing === t.id ? " playing" : ""}`, "data-id": t.id, "data-index": index, "data-testid": "track-row" },
    el("button", { class: "play", "data-action": "play", title: "Play", "aria-label": `Play ${labelOf(t)}`, text: "▶" }),
    el("div", { class: "meta" },
      el("div", { class: "title", text: titleOf(t), title: t.path || "" }),
      el("div", { class: "sub" }, sub, ...extras)),
    t.score !== undefined ? el("span", { class: "score", title: "Similarity (cosine)", text: t.score.toFixed(2) })
      : t.step !== undefined ? el("span", { class: "score step", title: "Step: cosine distance from the previous track", text: index ? `+${t.step.toFixed(3)}` : "start" }) : null,
    el("span", { class: "dur", text: clock(t.duration) }),
    actions,
  );
}

const MAX_ROWS = 1000; // a list longer than this shows its first rows; play and M3U8 use all

function showList(name, rows, info) {
  state.lists[name] = remember(rows);
  const ol = document.getElementById(name === "search" ? "search-results" : `${name}-list`);
  ol.replaceChildren(...rows.slice(0, MAX_ROWS).map((t, i) => trackRow(t, name, i)));
  if (rows.length > MAX_ROWS) ol.append(el("li", { class: "more", text: `… and ${rows.length - MAX_ROWS} more (all of them are in the M3U8)` }));
  const link = document.getElementById(`${name}-m3u8`);
  link.hidden = rows.length === 0;
  if (rows.length) link.href = m3u8Url(rows.map((r) => r.id), rows, name);
  const infoEl = document.getElementById(`${name}-info`);
  if (infoEl && info !== undefined) infoEl.textContent = info;
  if (name !== "search") mapView.highlight(name);
}

function onListClick(event) {
  const li = event.target.closest("li.track");
  if (!li) return;
  const list = li.closest("ol").dataset.list;
  const id = Number(li.dataset.id);
  const index = Number(li.dataset.index);
  const button = event.target.closest("button");
  const action = button ? button.dataset.action : "play";
  if (!action) return;
  if (action === "play") play(id, { list, index });
  else if (action === "similar") showSimilar(id);
  else if (action === "like") toggleSeed("likes", id);
  else if (action === "dislike") toggleSeed("dislikes", id);
  else if (action === "set-a") setEnd("A", id);
  else if (action === "set-b") setEnd("B", id);
  else if (action === "explain") toggleExplain(li, id);
}

function refreshRowMarks() {
  for (const li of document.querySelectorAll("li.track")) {
    const id = Number(li.dataset.id);
    li.classList.toggle("playing", state.playing === id);
    const mark = (action, on) => { const b = li.querySelector(`[data-action="${action}"]`); if (b) b.classList.toggle("on", on); };
    mark("like", state.likes.includes(id));
    mark("dislike", state.dislikes.includes(id));
    mark("set-a", state.pathA === id);
    mark("set-b", state.pathB === id);
  }
}

function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.dataset.panel !== name;
  mapView.highlight(name);
}

// ---------------------------------------------------------------------------------------------
// Player
// ---------------------------------------------------------------------------------------------

const audio = () => $("#audio");

function play(id, queue = null, at = null) {
  const player = audio();
  const t = track(id);
  if (queue) state.queue = queue;
  if (state.playing !== id || !player.src) {
    state.playing = id;
    player.src = `/api/tracks/${id}/audio`;
    if (at !== null) player.addEventListener("loadedmetadata", () => { player.currentTime = at; }, { once: true });
  } else if (at !== null) {
    player.currentTime = at;
  }
  player.play().catch((e) => { if (e.name !== "AbortError") toast(`Cannot play ${labelOf(t)}: ${e.message}`); });
  $("#now-playing").textContent = labelOf(t);
  $("#now-sub").textContent = [t.album, t.genre].filter(Boolean).join(" · ");
  for (const b of ["#now-similar", "#now-like", "#now-dislike"]) $(b).disabled = false;
  document.title = `${labelOf(t)} · songspace`;
  refreshRowMarks();
  mapView.draw();
}

function step(delta) {
  const q = state.queue;
  if (!q) return;
  const rows = state.lists[q.list] || [];
  const index = q.index + delta;
  if (index >= 0 && index < rows.length) play(rows[index].id, { list: q.list, index });
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

let searchSeq = 0;
async function search(offset = 0) {
  const q = $("#search").value.trim();
  const seq = ++searchSeq;
  const found = await api(`/api/tracks?q=${encodeURIComponent(q)}&offset=${offset}&limit=${PAGE}`);
  if (seq !== searchSeq) return; // a later search already answered
  state.searchOffset = offset; state.searchTotal = found.total; state.searchQuery = q;
  const last = offset + found.items.length;
  const info = found.total === 0 ? (q ? `Nothing matches “${q}”` : "The library is empty: index a folder first")
    : `${offset + 1}–${last} of ${found.total}${q ? ` matching “${q}”` : " tracks"}`;
  showList("search", found.items, info);
  $("#search-prev").disabled = offset === 0;
  $("#search-next").disabled = last >= found.total;
}

let searchTimer = null;
function searchSoon() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => search(0).catch(() => {}), 200);
}

// ---------------------------------------------------------------------------------------------
// More like this, and the explain view
// ---------------------------------------------------------------------------------------------

async function showSimilar(id) {
  showTab("similar");
  state.similarQuery = id;
  const t = track(id);
  const card = $("#similar-query");
  card.classList.remove("empty");
  card.replaceChildren(
    el("span", { class: "label", text: "Sounds like " }),
    el("button", { class: "link", "data-action": "play-query", title: "Play it", text: `▶ ${labelOf(t)}` }));
  $("#similar-info").textContent = "Listening for neighbours…";
  const params = new URLSearchParams({ k: $("#similar-k").value });
  if ($("#similar-other-artists").checked) params.set("other_artists", "true");
  if ($("#similar-other-albums").checked) params.set("other_albums", "true");
  try {
    const found = await api(`/api/tracks/${id}/similar?${params}`);
    if (state.similarQuery !== id) return;
    showList("similar", found.items, found.items.length ? `${found.items.length} nearest tracks · press “why?” to hear which parts match` : "No neighbours with these options");
  } catch (e) {
    $("#similar-info").textContent = "";
    showList("similar", [], "");
  }
}

function spanBar(span, duration, label, id) {
  const total = duration || Math.max(span[1], 1);
  const left = Math.min(100, (100 * span[0]) / total), width = Math.max(1.5, Math.min(100 - left, (100 * (span[1] - span[0])) / total));
  return el("div", { class: "tl" },
    el("span", { class: "tl-label", text: label }),
    el("div", { class: "bar", title: `${clock(span[0])}–${clock(span[1])} of ${clock(total)}` },
      el("span", { class: "seg", style: `left:${left}%;width:${width}%` })),
    el("button", { class: "time", "data-play": id, "data-at": span[0], title: "Play from here", text: `${clock(span[0])}–${clock(span[1])}` }));
}

async function toggleExplain(li, id) {
  const open = li.querySelector(".explain");
  if (open) { open.remove(); return; }
  const a = state.similarQuery;
  const box = el("div", { class: "explain", "data-testid": "explain" }, el("div", { class: "explain-head", text: "Finding the moments that match…" }));
  li.append(box);
  try {
    const found = await api(`/api/explain?a=${a}&b=${id}&top=5`);
    const ta = track(a), tb = track(id);
    box.replaceChildren(
      el("div", { class: "explain-head", text: found.items.length ? `Moments that sound alike: “${titleOf(ta)}” (A) and this track (B)` : "No segment pairs to compare" }),
      ...found.items.map((m) => el("div", { class: "explain-pair", "data-testid": "explain-pair" },
        spanBar(m.a_span, ta.duration, "A", a),
        spanBar(m.b_span, tb.duration, "B", id),
        el("span", { class: "sim", title: "Similarity of the two moments (cosine)", text: m.similarity.toFixed(2) }))));
  } catch (e) {
    box.replaceChildren(el("div", { class: "explain-head", text: e.message }));
  }
}

// ---------------------------------------------------------------------------------------------
// Radio
// ---------------------------------------------------------------------------------------------

function saveSeeds() {
  try { localStorage.setItem("songspace.seeds", JSON.stringify({ likes: state.likes, dislikes: state.dislikes, tracks: [...state.likes, ...state.dislikes].map(track) })); } catch (_) { /* private mode */ }
}

function loadSeeds() {
  try {
    const saved = JSON.parse(localStorage.getItem("songspace.seeds") || "null");
    if (saved) { remember(saved.tracks || []); state.likes = saved.likes || []; state.dislikes = saved.dislikes || []; }
  } catch (_) { /* nothing saved */ }
}

function toggleSeed(kind, id) {
  const other = kind === "likes" ? "dislikes" : "likes";
  const list = state[kind];
  if (list.includes(id)) state[kind] = list.filter((i) => i !== id);
  else { state[kind] = [...list, id]; state[other] = state[other].filter((i) => i !== id); toast(`${kind === "likes" ? "Liked" : "Disliked"}: ${labelOf(track(id))}`, "info"); }
  renderSeeds();
  saveSeeds();
}

function renderSeeds() {
  for (const kind of ["likes", "dislikes"]) {
    const ul = $(`#radio-${kind}`);
    const ids = state[kind];
    ul.replaceChildren(...(ids.length ? ids.map((id) => el("li", { class: `chip ${kind}`, "data-id": id },
      el("span", { text: labelOf(track(id)) }),
      el("button", { "data-remove": kind, title: "Remove", text: "×" })))
      : [el("li", { class: "none", text: kind === "likes" ? "none yet: press ♥ on a track" : "none" })]));
  }
  const badge = $("#radio-badge");
  badge.hidden = state.likes.length === 0;
  badge.textContent = state.likes.length;
  refreshRowMarks();
}

async function makeRadio() {
  if (!state.likes.length) { toast("Like at least one track first (♥ on any track)"); return; }
  const body = {
    seeds: state.likes, avoid: state.dislikes,
    n: Number($("#radio-n").value) || 30,
    seed: Number($("#radio-seed").value) || 0,
    artist_window: Number($("#radio-artist-window").value) || 0,
  };
  $("#radio-info").textContent = "Tuning…";
  try {
    const found = await api("/api/radio", { method: "POST", body: JSON.stringify(body) });
    showList("radio", found.items, `${found.items.length} tracks around ${state.likes.length} liked`);
  } catch (e) { $("#radio-info").textContent = ""; }
}

// ---------------------------------------------------------------------------------------------
// Journey A → B
// ---------------------------------------------------------------------------------------------

function setEnd(which, id) {
  if (which === "A") state.pathA = id; else state.pathB = id;
  renderEnds();
  toast(`Journey ${which === "A" ? "starts at" : "ends at"}: ${labelOf(track(id))}`, "info");
}

function renderEnds() {
  for (const [which, id] of [["a", state.pathA], ["b", state.pathB]]) {
    const slot = $(`#path-${which}`);
    slot.classList.toggle("empty", id === null);
    slot.querySelector(".slot-track").textContent = id === null ? "not chosen" : labelOf(track(id));
    slot.dataset.id = id === null ? "" : id;
  }
  refreshRowMarks();
}

async function makeJourney() {
  if (state.pathA === null || state.pathB === null) { toast("Choose both ends: press A on one track and B on another"); return; }
  const n = Number($("#path-n").value) || 12;
  $("#path-summary").textContent = "Walking…";
  try {
    const found = await api(`/api/path?a=${state.pathA}&b=${state.pathB}&n=${n}`);
    const summary = $("#path-summary");
    summary.replaceChildren(
      el("span", { text: `${found.items.length} tracks · ` }),
      el("span", { class: "metric", "data-testid": "largest-step", title: "The biggest jump between two neighbours of the journey (cosine distance)", text: `largest step ${found.largest_step.toFixed(3)}` }),
      el("span", { text: " vs " }),
      el("span", { class: "metric", "data-testid": "direct", title: "Cosine distance from A straight to B", text: `straight A→B ${found.direct.toFixed(3)}` }));
    showList("journey", found.items, "Each track is closer to B than the one before");
  } catch (e) { $("#path-summary").textContent = ""; }
}

// ---------------------------------------------------------------------------------------------
// The map: one canvas, dots drawn in a cached layer, a grid for hover hit-tests
// ---------------------------------------------------------------------------------------------

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#5fb0e6", "#d4a6c8", "#8cd17d", "#f1ce63", "#86bcb6", "#e49444", "#a5a5ff"];
const OTHER = "#6b7080", UNKNOWN = "#3c4150", BACKGROUND = "#12141a";
const CELL = 16; // px: the hit-test grid's cell
const PIXEL_DOTS = 2000; // above this many dots, write them as pixels (stampDots)

// "#rrggbb" as one little-endian RGBA pixel (opaque), to write into ImageData.
function packed(hex) {
  const v = parseInt(hex.slice(1), 16);
  return (0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | ((v >> 16) & 0xff)) >>> 0;
}

const mapView = (() => {
  const canvas = $("#map-canvas"), wrap = $("#map-wrap"), tip = $("#map-tooltip");
  const ctx = canvas.getContext("2d");
  const layer = document.createElement("canvas"); // the dots, redrawn only when the view or colours change
  const lctx = layer.getContext("2d");
  let points = [], colours = [], legend = [];
  let byId = new Map();
  let sx = new Float32Array(0), sy = new Float32Array(0); // screen positions, CSS px
  let grid = new Map();
  let view = { cx: 0.5, cy: 0.5, k: 1 };
  let width = 1, height = 1, dpr = 1;
  let layerDirty = true, frame = 0;
  let hover = -1, box = null, drag = null, selectMode = false;
  let highlighted = [], highlightLine = false;

  // Dots as big as the crowd allows, growing a little as one zooms in.
  function radius() {
    const n = points.length;
    const base = n <= 100 ? 6 : n <= 1000 ? 4.5 : n <= 5000 ? 3.2 : 2.5;
    return Math.min(10, base * Math.sqrt(Math.max(1, view.k / (Math.min(width, height) * 0.9))));
  }

  function fit() {
    view = { cx: 0.5, cy: 0.5, k: Math.max(10, Math.min(width, height) * 0.9) };
    layerDirty = true; draw();
  }

  function resize() {
    const r = wrap.getBoundingClientRect();
    width = Math.max(1, Math.floor(r.width)); height = Math.max(1, Math.floor(r.height));
    dpr = window.devicePixelRatio || 1;
    for (const c of [canvas, layer]) { c.width = Math.round(width * dpr); c.height = Math.round(height * dpr); }
    canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
    if (!points.length || view.k === 1) fit(); else { layerDirty = true; draw(); }
  }

  function project() {
    const n = points.length;
    if (sx.length !== n) { sx = new Float32Array(n); sy = new Float32Array(n); }
    grid = new Map();
    for (let i = 0; i < n; i++) {
      sx[i] = (points[i].x - view.cx) * view.k + width / 2;
      sy[i] = (points[i].y - view.cy) * view.k + height / 2;
      if (sx[i] < -CELL || sy[i] < -CELL || sx[i] > width + CELL || sy[i] > height + CELL) continue;
      const key = Math.floor(sx[i] / CELL) * 65536 + Math.floor(sy[i] / CELL);
      const cell = grid.get(key);
      if (cell) cell.push(i); else grid.set(key, [i]);
    }
  }

  function drawLayer() {
    const t0 = performance.now();
    project();
    lctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    lctx.fillStyle = BACKGROUND;
    lctx.fillRect(0, 0, width, height);
    const r = radius();
    // One path per colour: 10,000 dots cost a handful of fills, not 10,000.
    const groups = new Map();
    for (let i = 0; i < points.length; i++) {
      const c = colours[i];
      const g = groups.get(c);
      if (g) g.push(i); else groups.set(c, [i]);
    }
    const order = [...groups.keys()].sort((a, b) => (a === UNKNOWN ? -2 : a === OTHER ? -1 : 0) - (b === UNKNOWN ? -2 : b === OTHER ? -1 : 0));
    let drawn = 0;
    if (points.length > PIXEL_DOTS) drawn = stampDots(order, groups, r);
    else {
      lctx.globalAlpha = 0.9;
      for (const c of order) {
        lctx.fillStyle = c;
        lctx.beginPath();
        for (const i of groups.get(c)) {
          if (sx[i] < -r || sy[i] < -r || sx[i] > width + r || sy[i] > height + r) continue;
          lctx.moveTo(sx[i] + r, sy[i]);
          lctx.arc(sx[i], sy[i], r, 0, 2 * Math.PI);
          drawn++;
        }
        lctx.fill();
      }
      lctx.globalAlpha = 1;
    }
    canvas.dataset.points = points.length;
    canvas.dataset.drawn = drawn;
    canvas.dataset.layerMs = (performance.now() - t0).toFixed(1);
    layerDirty = false;
  }

  // A crowd of dots written straight into the pixels: vector arcs are rasterised on the CPU
  // when the browser has no GPU canvas, and 10,000 of them then take tens of ms a frame; stamping
  // a precomputed disc costs a few ms however the canvas is rasterised.
  let pixels = null;
  function stampDots(order, groups, r) {
    const W = layer.width, H = layer.height;
    if (!pixels || pixels.width !== W || pixels.height !== H) pixels = lctx.createImageData(W, H);
    const u32 = new Uint32Array(pixels.data.buffer);
    u32.fill(packed(BACKGROUND));
    const rd = Math.max(1, r * dpr), reach = Math.ceil(rd), disc = [];
    for (let dy = -reach; dy <= reach; dy++) for (let dx = -reach; dx <= reach; dx++) if (dx * dx + dy * dy <= rd * rd) disc.push(dx, dy);
    let drawn = 0;
    for (const c of order) {
      const colour = packed(c);
      for (const i of groups.get(c)) {
        const x = Math.round(sx[i] * dpr), y = Math.round(sy[i] * dpr);
        if (x < -reach || y < -reach || x >= W + reach || y >= H + reach) continue;
        drawn++;
        const inside = x >= reach && y >= reach && x < W - reach && y < H - reach;
        for (let k = 0; k < disc.length; k += 2) {
          const X = x + disc[k], Y = y + disc[k + 1];
          if (inside || (X >= 0 && Y >= 0 && X < W && Y < H)) u32[Y * W + X] = colour;
        }
      }
    }
    lctx.putImageData(pixels, 0, 0);
    return drawn;
  }

  function ring(i, colour, r, lineWidth = 2) {
    ctx.beginPath();
    ctx.arc(sx[i], sy[i], r, 0, 2 * Math.PI);
    ctx.strokeStyle = colour; ctx.lineWidth = lineWidth; ctx.stroke();
  }

  function render() {
    frame = 0;
    if (layerDirty) drawLayer();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(layer, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const r = radius();
    const marked = highlighted.map((id) => byId.get(id)).filter((i) => i !== undefined);
    if (highlightLine && marked.length > 1) {
      ctx.beginPath();
      marked.forEach((i, n) => (n ? ctx.lineTo(sx[i], sy[i]) : ctx.moveTo(sx[i], sy[i])));
      ctx.strokeStyle = "rgba(255,255,255,0.55)"; ctx.lineWidth = 1.5; ctx.stroke();
    }
    for (const i of marked) ring(i, "#ffffff", r + 2, 1.5);
    const playing = byId.get(state.playing);
    if (playing !== undefined) { ring(playing, "#ffffff", r + 6, 2.5); ring(playing, "#1db954", r + 3, 2); }
    if (hover >= 0) ring(hover, "#ffffff", r + 3, 2);
    if (box) {
      const [x0, y0, x1, y1] = box;
      ctx.fillStyle = "rgba(120,170,255,0.15)"; ctx.strokeStyle = "rgba(150,190,255,0.9)"; ctx.lineWidth = 1;
      ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
      ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    }
  }

  function draw() { if (!frame) frame = requestAnimationFrame(render); }

  function hit(x, y) {
    const r = Math.max(radius() + 3, 6);
    const gx = Math.floor(x / CELL), gy = Math.floor(y / CELL);
    let best = -1, bestD = r * r;
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      const cell = grid.get((gx + dx) * 65536 + (gy + dy));
      if (!cell) continue;
      for (const i of cell) {
        const d = (sx[i] - x) ** 2 + (sy[i] - y) ** 2;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
    return best;
  }

  function label(value) { return value === null || value === undefined || value === "" ? null : String(value); }

  function valueOf(p, key) {
    if (key.startsWith("predicted:")) return label((p.predicted || {})[key.slice(10)]);
    return label(p[key]);
  }

  function colourBy(key) {
    const counts = new Map();
    for (const p of points) { const v = valueOf(p, key); if (v !== null) counts.set(v, (counts.get(v) || 0) + 1); }
    const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const named = new Map(ranked.slice(0, PALETTE.length).map(([v], i) => [v, PALETTE[i]]));
    colours = points.map((p) => { const v = valueOf(p, key); return v === null ? UNKNOWN : named.get(v) || OTHER; });
    legend = ranked.slice(0, PALETTE.length).map(([v, n]) => ({ value: v, n, colour: named.get(v) }));
    const rest = ranked.slice(PALETTE.length).reduce((s, [, n]) => s + n, 0);
    if (rest) legend.push({ value: `${ranked.length - PALETTE.length} others`, n: rest, colour: OTHER });
    const unknown = points.length - ranked.reduce((s, [, n]) => s + n, 0);
    if (unknown) legend.push({ value: `no ${key.replace("predicted:", "predicted ")}`, n: unknown, colour: UNKNOWN });
    $("#map-legend").replaceChildren(...legend.map((l) => el("li", {},
      el("span", { class: "swatch", style: `background:${l.colour}` }), el("span", { text: `${l.value} ` }), el("span", { class: "n", text: l.n }))));
    layerDirty = true; draw();
  }

  function setData(data) {
    points = data.points || [];
    byId = new Map(points.map((p, i) => [p.id, i]));
    for (const p of points) if (!state.tracks.has(p.id)) state.tracks.set(p.id, { ...p, predicted: undefined });
    const select = $("#map-color");
    const current = select.value;
    for (const o of [...select.options]) if (o.value.startsWith("predicted:")) o.remove();
    for (const name of data.predicted_names || []) select.append(el("option", { value: `predicted:${name}`, text: `predicted ${name}` }));
    if ([...select.options].some((o) => o.value === current)) select.value = current;
    const method = data.method === "pca" ? "PCA (too few tracks for UMAP)" : "UMAP";
    $("#map-info").textContent = points.length
      ? `${points.length} tracks · close together = sound alike · ${method} · scroll to zoom, drag to move`
      : "Nothing on the map yet: index some music";
    hover = -1;
    colourBy(select.value);
    fit();
  }

  async function load() {
    $("#map-info").textContent = "Drawing the map (the first time takes a while)…";
    try { setData(await api("/api/map")); } catch (e) { $("#map-info").textContent = `No map: ${e.message}`; }
  }

  function highlight(listName) {
    highlighted = ["similar", "radio", "journey", "selection"].includes(listName) ? (state.lists[listName] || []).map((t) => t.id) : [];
    if (listName === "similar" && state.similarQuery !== null) highlighted = [state.similarQuery, ...highlighted];
    highlightLine = listName === "journey";
    draw();
  }

  function local(e) { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }

  function showTip(i, x, y) {
    if (i < 0) { tip.hidden = true; canvas.style.cursor = selectMode ? "crosshair" : "grab"; return; }
    const p = points[i];
    tip.replaceChildren(el("div", { class: "tip-title", text: labelOf(p) }),
      el("div", { class: "tip-sub", text: [p.album, p.genre].filter(Boolean).join(" · ") }));
    tip.hidden = false;
    tip.style.left = `${Math.min(x + 14, width - tip.offsetWidth - 4)}px`;
    tip.style.top = `${Math.max(4, y - tip.offsetHeight - 10)}px`;
    canvas.style.cursor = "pointer";
  }

  canvas.addEventListener("pointerdown", (e) => {
    const [x, y] = local(e);
    canvas.setPointerCapture(e.pointerId);
    drag = { x, y, cx: view.cx, cy: view.cy, selecting: selectMode || e.shiftKey, moved: false };
  });
  canvas.addEventListener("pointermove", (e) => {
    const [x, y] = local(e);
    if (drag) {
      if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 4) drag.moved = true;
      if (!drag.moved) return;
      if (drag.selecting) { box = [drag.x, drag.y, x, y]; draw(); return; }
      view.cx = drag.cx - (x - drag.x) / view.k; view.cy = drag.cy - (y - drag.y) / view.k;
      canvas.style.cursor = "grabbing"; tip.hidden = true;
      layerDirty = true; draw();
      return;
    }
    const i = hit(x, y);
    if (i !== hover) { hover = i; draw(); }
    showTip(i, x, y);
  });
  canvas.addEventListener("pointerup", (e) => {
    const [x, y] = local(e);
    const d = drag; drag = null;
    if (!d) return;
    if (d.moved && d.selecting) { selectBox(d.x, d.y, x, y); box = null; draw(); return; }
    if (d.moved) { canvas.style.cursor = "grab"; return; }
    const i = hit(x, y);
    if (i >= 0) { play(points[i].id); showSimilar(points[i].id); }
  });
  canvas.addEventListener("pointerleave", () => { if (!drag) { hover = -1; tip.hidden = true; draw(); } });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y] = local(e);
    const wx = (x - width / 2) / view.k + view.cx, wy = (y - height / 2) / view.k + view.cy;
    const base = Math.min(width, height) * 0.9;
    view.k = Math.max(base * 0.5, Math.min(base * 200, view.k * Math.exp(-e.deltaY * 0.0015)));
    view.cx = wx - (x - width / 2) / view.k; view.cy = wy - (y - height / 2) / view.k;
    layerDirty = true; draw();
  }, { passive: false });

  function selectBox(x0, y0, x1, y1) {
    const [lx, hx, ly, hy] = [Math.min(x0, x1), Math.max(x0, x1), Math.min(y0, y1), Math.max(y0, y1)];
    const inside = [];
    for (let i = 0; i < points.length; i++) if (sx[i] >= lx && sx[i] <= hx && sy[i] >= ly && sy[i] <= hy) inside.push(i);
    // Order the playlist as a walk: start at the leftmost dot, then always the nearest unplayed.
    const order = [];
    const left = new Set(inside);
    let at = inside.reduce((b, i) => (b < 0 || sx[i] < sx[b] ? i : b), -1);
    while (at >= 0) {
      order.push(at); left.delete(at);
      let next = -1, best = Infinity;
      if (left.size < 3000) for (const j of left) { const d = (points[j].x - points[at].x) ** 2 + (points[j].y - points[at].y) ** 2; if (d < best) { best = d; next = j; } }
      else next = left.values().next().value ?? -1;
      at = next;
    }
    const rows = order.map((i) => track(points[i].id));
    showTab("selection");
    showList("selection", rows, rows.length ? `${rows.length} tracks from the map` : "No dots in that box");
    const badge = $("#selection-badge");
    badge.hidden = rows.length === 0; badge.textContent = rows.length;
  }

  function setSelectMode(on) {
    selectMode = on;
    $("#map-select-mode").setAttribute("aria-pressed", String(on));
    $("#map-select-mode").classList.toggle("on", on);
    canvas.style.cursor = on ? "crosshair" : "grab";
  }

  // For tests and for anyone scripting the page: where a track's dot is, in CSS px of the canvas.
  function screenOf(id) {
    const i = byId.get(id);
    if (i === undefined) return null;
    if (layerDirty) drawLayer();
    return { x: sx[i], y: sy[i] };
  }

  // Draw everything now, the dots layer included (to time a full redraw).
  function renderNow() { layerDirty = true; render(); }

  new ResizeObserver(resize).observe(wrap);
  return { load, setData, draw, renderNow, hit, highlight, colourBy, fit, setSelectMode, screenOf, get selectMode() { return selectMode; }, get count() { return points.length; } };
})();

// ---------------------------------------------------------------------------------------------
// Library status and index runs
// ---------------------------------------------------------------------------------------------

let indexTimer = null, wasRunning = false, watchedRun = null; // watchedRun: the run this page saw going

function showStatus(s) {
  const parts = [`${s.ok} tracks`];
  if (s.searchable !== undefined && s.searchable !== s.ok) parts.push(`${s.searchable} searchable`);
  if (s.failed) parts.push(`${s.failed} failed`);
  if (s.silent || s.too_short) parts.push(`${(s.silent || 0) + (s.too_short || 0)} silent or too short`);
  parts.push(`model ${s.searched_model || (s.model && s.model.id) || "?"}`);
  const status = $("#status");
  status.textContent = parts.join(" · ");
  const failures = (s.failures || []).slice(0, 20).map(([path, why]) => `${baseName(path)}: ${why}`);
  status.title = [`Library: ${s.library}`, `Folders: ${(s.folders || []).join(", ") || "none"}`, ...failures].join("\n");
  if (s.index) showIndex(s.index);
}

function showIndex(p) {
  const box = $("#index-box"), bar = $("#index-progress"), note = $("#index-note"), button = $("#index-start");
  button.disabled = !!p.running;
  button.textContent = p.running ? "Indexing…" : "Update library";
  if (p.running) {
    watchedRun = p.started;
    box.hidden = false;
    if (p.total > 0) { bar.max = p.total; bar.value = p.done; } else bar.removeAttribute("value");
    const pct = p.total > 0 ? ` ${Math.floor((100 * p.done) / p.total)}%` : "";
    note.textContent = `${p.phase || "working"}${pct}${p.note ? ` · ${p.note}` : ""}`;
    if (!indexTimer) indexTimer = setInterval(pollIndex, 1000);
  } else {
    if (indexTimer) { clearInterval(indexTimer); indexTimer = null; }
    if (watchedRun === "next") watchedRun = p.started; // started here, and over before the first poll
    const ours = watchedRun !== null && p.started === watchedRun;
    if (p.error && ours) { box.hidden = false; bar.hidden = true; note.textContent = `The run failed: ${p.error}`; }
    else if (p.report && ours) {
      box.hidden = false; bar.hidden = true;
      const r = p.report;
      note.textContent = `Done: ${r.added} added, ${r.updated} updated, ${r.removed} removed, ${r.failed} failed`;
    } else box.hidden = true;
    if (wasRunning) onIndexFinished();
  }
  if (p.running) bar.hidden = false;
  wasRunning = !!p.running;
}

async function pollIndex() {
  try { showIndex(await api("/api/index")); } catch (_) { /* toast shown */ }
}

async function loadStatus() {
  try { showStatus(await api("/api/status")); } catch (e) { $("#status").textContent = `Library unavailable: ${e.message}`; }
}

async function startIndex() {
  try {
    await api("/api/index", { method: "POST" });
    toast("Indexing started: the library stays usable meanwhile", "info");
    wasRunning = true;
    watchedRun = "next";
    await pollIndex();
  } catch (_) { /* toast shown */ }
}

function onIndexFinished() {
  loadStatus();
  search(state.searchOffset).catch(() => {});
  mapView.load();
}

// ---------------------------------------------------------------------------------------------
// Start-up: wire everything, then load status, the first page and the map
// ---------------------------------------------------------------------------------------------

function wire() {
  for (const ol of document.querySelectorAll("ol.tracks")) ol.addEventListener("click", onListClick);
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("#search").addEventListener("input", searchSoon);
  $("#search").addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(searchTimer); search(0).catch(() => {}); } });
  $("#search-prev").addEventListener("click", () => search(Math.max(0, state.searchOffset - PAGE)).catch(() => {}));
  $("#search-next").addEventListener("click", () => search(state.searchOffset + PAGE).catch(() => {}));
  $("#similar-query").addEventListener("click", (e) => { if (e.target.closest("[data-action=play-query]")) play(state.similarQuery); });
  for (const id of ["#similar-other-artists", "#similar-other-albums", "#similar-k"]) $(id).addEventListener("change", () => { if (state.similarQuery !== null) showSimilar(state.similarQuery); });
  document.addEventListener("click", (e) => {
    const t = e.target.closest("button.time");
    if (t) play(Number(t.dataset.play), null, Number(t.dataset.at));
    const r = e.target.closest("button[data-remove]");
    if (r) toggleSeed(r.dataset.remove, Number(r.closest("li").dataset.id));
  });
  $("#radio-go").addEventListener("click", makeRadio);
  $("#radio-shuffle").addEventListener("click", () => { $("#radio-seed").value = Math.floor(Math.random() * 100000); if (state.lists.radio.length) makeRadio(); });
  $("#path-go").addEventListener("click", makeJourney);
  $("#path-swap").addEventListener("click", () => { [state.pathA, state.pathB] = [state.pathB, state.pathA]; renderEnds(); });
  $("#map-color").addEventListener("change", (e) => mapView.colourBy(e.target.value));
  $("#map-select-mode").addEventListener("click", () => mapView.setSelectMode(!mapView.selectMode));
  $("#map-reset").addEventListener("click", () => mapView.fit());
  $("#index-start").addEventListener("click", startIndex);
  $("#player-prev").addEventListener("click", () => step(-1));
  $("#player-next").addEventListener("click", () => step(1));
  $("#now-similar").addEventListener("click", () => state.playing !== null && showSimilar(state.playing));
  $("#now-like").addEventListener("click", () => state.playing !== null && toggleSeed("likes", state.playing));
  $("#now-dislike").addEventListener("click", () => state.playing !== null && toggleSeed("dislikes", state.playing));
  audio().addEventListener("ended", () => step(1));
  audio().addEventListener("error", () => { if (audio().src) toast(`This browser cannot play ${labelOf(track(state.playing))} (its format, or the file is gone)`); });
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, select, textarea")) return;
    if (e.key === "/") { e.preventDefault(); $("#search").focus(); }
    else if (e.key === " " && audio().src) { e.preventDefault(); audio().paused ? audio().play() : audio().pause(); }
    else if (e.key === "Escape") mapView.setSelectMode(false);
  });
}

function start() {
  wire();
  loadSeeds();
  renderSeeds();
  renderEnds();
  loadStatus();
  search(0).catch(() => {});
  mapView.load();
  window.songspace = { state, map: mapView, play, showSimilar, search };
}

start();
