// The map: one canvas, dots drawn in a cached layer, a grid for hover hit-tests. A click on
// a dot calls hooks.pickTrack; a drawn box calls hooks.selectTracks (both set by app.js).

import { $, api, el, hooks, labelOf, plural, state, toast, track } from "./core.js";

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

export const mapView = (() => {
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

  // The whole map in view; it stays fitted as the box resizes (or appears: a phone's Map tab)
  // until the user zooms or drags.
  let fitted = true;
  function fit() {
    fitted = true;
    view = { cx: 0.5, cy: 0.5, k: Math.max(10, Math.min(width, height) * 0.9) };
    layerDirty = true; draw();
  }

  function resize() {
    const r = wrap.getBoundingClientRect();
    width = Math.max(1, Math.floor(r.width)); height = Math.max(1, Math.floor(r.height));
    dpr = window.devicePixelRatio || 1;
    for (const c of [canvas, layer]) { c.width = Math.round(width * dpr); c.height = Math.round(height * dpr); }
    canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
    if (!points.length || fitted) fit(); else { layerDirty = true; draw(); }
    legendCue();
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
    if (rest) legend.push({ value: plural(ranked.length - PALETTE.length, "other"), n: rest, colour: OTHER });
    const unknown = points.length - ranked.reduce((s, [, n]) => s + n, 0);
    if (unknown) legend.push({ value: `no ${key.replace("predicted:", "predicted ")}`, n: unknown, colour: UNKNOWN });
    $("#map-legend").replaceChildren(...legend.map((l) => el("li", {},
      el("span", { class: "swatch", style: `background:${l.colour}` }), el("span", { text: `${l.value} ` }), el("span", { class: "n", text: l.n }))));
    $("#map-legend").scrollTop = 0;
    legendCue();
    layerDirty = true; draw();
  }

  // A legend taller than its box scrolls: say so, until its end is in view.
  function legendCue() {
    const ul = $("#map-legend");
    const hidden = ul.scrollHeight - ul.clientHeight - ul.scrollTop;
    const bottom = ul.getBoundingClientRect().bottom - 1;
    const rows = [...ul.children].filter((li) => li.getBoundingClientRect().top >= bottom).length;
    $("#legend-cue").hidden = !(hidden > 1 && rows > 0);
    $("#legend-cue").textContent = `▾ ${plural(rows, "more entry", "more entries")}: scroll the legend`;
  }
  $("#map-legend").addEventListener("scroll", legendCue);

  // `keep`: the same map brought up to date (a poll while it is being laid out): the view stays.
  function setData(data, keep = false) {
    points = data.points || [];
    byId = new Map(points.map((p, i) => [p.id, i]));
    for (const p of points) if (!state.tracks.has(p.id)) state.tracks.set(p.id, { ...p, predicted: undefined });
    const select = $("#map-color");
    const current = select.value;
    for (const o of [...select.options]) if (o.value.startsWith("predicted:")) o.remove();
    for (const name of data.predicted_names || []) select.append(el("option", { value: `predicted:${name}`, text: `predicted ${name}` }));
    if ([...select.options].some((o) => o.value === current)) select.value = current;
    const method = data.method === "pca" ? (data.final ? "PCA (too few tracks for UMAP)" : "a quick PCA") : "UMAP";
    let info = points.length
      ? `${points.length} tracks · close together = sound alike · ${method} · scroll to zoom, drag to move`
      : "Nothing on the map yet: index some music";
    if (data.pending) info += data.computing === "umap" ? " · laying out with UMAP…" : " · updating…";
    else if (data.error) info += ` · the map could not be updated: ${data.error}`;
    $("#map-info").textContent = info;
    $("#map-recompute").disabled = Boolean(data.pending && data.computing === "umap");
    hover = -1;
    colourBy(select.value);
    if (!keep || fitted) fit();
  }

  // The map is laid out on the server after each index run, never for this request: while it
  // is being brought up to date ("pending") ask again until it is done.
  let poll = 0, loaded = false;
  async function load(keep = false) {
    clearTimeout(poll);
    if (!loaded) $("#map-info").textContent = "Loading the map…";
    try {
      const data = await api("/api/map");
      setData(data, keep && loaded);
      loaded = true;
      if (data.pending) poll = setTimeout(() => load(true), 2000);
    } catch (e) {
      points = []; byId = new Map(); loaded = false;
      layerDirty = true; draw();
      $("#map-info").textContent = `No map: ${e.message}`;
    }
  }

  async function recompute() {
    try {
      await api("/api/map/recompute", { method: "POST" });
      $("#map-info").textContent += " · laying out with UMAP…";
      $("#map-recompute").disabled = true;
      load(true);
    } catch (e) { toast(`Recompute: ${e.message}`); }
  }
  $("#map-recompute").addEventListener("click", recompute);

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
      fitted = false;
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
    if (i >= 0) hooks.pickTrack(points[i].id);
  });
  canvas.addEventListener("pointerleave", () => { if (!drag) { hover = -1; tip.hidden = true; draw(); } });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y] = local(e);
    const wx = (x - width / 2) / view.k + view.cx, wy = (y - height / 2) / view.k + view.cy;
    const base = Math.min(width, height) * 0.9;
    view.k = Math.max(base * 0.5, Math.min(base * 200, view.k * Math.exp(-e.deltaY * 0.0015)));
    view.cx = wx - (x - width / 2) / view.k; view.cy = wy - (y - height / 2) / view.k;
    fitted = false;
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
    hooks.selectTracks(rows);
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
  return { load, recompute, setData, draw, renderNow, hit, highlight, colourBy, fit, setSelectMode, screenOf, get selectMode() { return selectMode; }, get count() { return points.length; } };
})();
