// Track lists: one row shape everywhere (search, similar, radio, journey, selection, album),
// the marks on rows (playing, liked, A/B), and the tabs. Clicks are handled by app.js. The lists
// that can hold the whole library (search, selection) are virtualised (virtual.js): only the
// rows in view are in the page.

import { $, clock, el, labelOf, m3u8Url, remember, state, titleOf } from "./core.js";
import { mapView } from "./map.js";
import { VirtualList } from "./virtual.js";

function actionButton(action, symbol, what, t, on = false, extra = "") {
  // The symbol is what shows; the accessible name says what it does, and to which track.
  return el("button", { "data-action": action, title: what, "aria-label": `${what}: ${labelOf(t)}`, text: symbol,
    class: [on ? "on" : "", extra].filter(Boolean).join(" ") || null, "aria-pressed": on === null ? null : String(!!on) });
}

export function trackRow(t, listName, index) {
  const sub = [t.artist, t.album].filter(Boolean).join(" · ");
  const extras = [];
  if (t.copy_of_query) extras.push(el("span", { class: "pill warn", title: "Another file of the same recording", text: "same recording" }));
  if (t.copies && t.copies.length) extras.push(el("span", { class: "pill", title: `Other files of this recording: ${t.copies.join(", ")}`, text: `+${t.copies.length} cop${t.copies.length > 1 ? "ies" : "y"}` }));
  const actions = el("div", { class: "actions" },
    actionButton("radio", "∿", "Radio from this track", t, null),
    actionButton("similar", "≈", "More like this", t, null),
    actionButton("like", "♥", "Like (a seed for radio)", t, state.likes.includes(t.id)),
    actionButton("dislike", "✕", "Dislike (radio keeps away from it)", t, state.dislikes.includes(t.id)),
    actionButton("set-a", "A", "Start a journey here", t, state.pathA === t.id),
    actionButton("set-b", "B", "End a journey here", t, state.pathB === t.id),
  );
  if (listName === "similar") actions.prepend(actionButton("explain", "why?", "Which moments of the two tracks sound alike", t, null, "explain-btn"));
  return el("li", { class: `track${state.playing === t.id ? " playing" : ""}`, "data-id": t.id, "data-index": index, "data-testid": "track-row" },
    el("button", { class: "play", "data-action": "play", title: "Play", "aria-label": `Play ${labelOf(t)}`, text: "▶" }),
    el("div", { class: "meta" },
      el("div", { class: "title", text: titleOf(t), title: t.path || "" }),
      el("div", { class: "sub" }, el("span", { class: "sub-text", text: sub }), ...extras)),
    t.score !== undefined ? el("span", { class: "score", title: t.cosine !== undefined ? `Search's score (the sound fused with timbre); cosine ${t.cosine.toFixed(2)}` : "Similarity (cosine)", text: t.score.toFixed(2) })
      : t.step !== undefined ? el("span", { class: "score step", title: "Step: cosine distance from the previous track", text: index ? `+${t.step.toFixed(3)}` : "start" }) : null,
    t.number !== undefined && t.number !== null ? el("span", { class: "num", title: "Disc and track number", text: t.disc > 1 || (listName === "album" && hasDiscs(listName)) ? `${t.disc}-${t.number}` : `${t.number}` }) : null,
    el("span", { class: "dur", text: clock(t.duration) }),
    actions,
  );
}

// An album over several discs numbers its tracks "disc-track".
function hasDiscs(listName) {
  return new Set((state.lists[listName] || []).map((t) => t && (t.disc || 1))).size > 1;
}

const MAX_ROWS = 1000; // a plain list longer than this shows its first rows; play and M3U8 use all

export function listElement(name) {
  return document.getElementById(name === "search" ? "search-results" : `${name}-list`);
}

// A row not loaded yet: its place in the list, until its page arrives.
function placeholder() {
  return el("li", { class: "track placeholder", "aria-busy": "true", tabindex: "-1" },
    el("span", { class: "play-space" }), el("div", { class: "meta" }, el("div", { class: "title", text: "Loading…" })));
}

const virtual = {}; // list name -> its VirtualList

// Make the list `name` virtual; `need(from, to)`: load rows that are not loaded yet (a list
// given whole to showList never misses any); `onRange(first, last)`: which rows are drawn.
export function virtualise(name, need, onRange) {
  virtual[name] = new VirtualList(listElement(name), {
    rowOf: (i) => state.lists[name][i] && trackRow(state.lists[name][i], name, i),
    missing: placeholder, need, onRange,
  });
}

export function virtualList(name) {
  return virtual[name];
}

// Show `rows` as the list `name` (a sparse array for a list loaded as it scrolls: then
// `m3u8` is its playlist's URL, as the rows to list it from are not all here).
export function showList(name, rows, info, m3u8 = null) {
  state.lists[name] = remember(rows);
  const ol = listElement(name);
  if (virtual[name]) virtual[name].reset(rows.length);
  else {
    ol.replaceChildren(...rows.slice(0, MAX_ROWS).map((t, i) => trackRow(t, name, i)));
    if (rows.length > MAX_ROWS) ol.append(el("li", { class: "more", text: `… and ${rows.length - MAX_ROWS} more (all of them are in the M3U8)` }));
  }
  const link = document.getElementById(`${name}-m3u8`);
  link.hidden = rows.length === 0;
  if (rows.length) link.href = m3u8 || m3u8Url(rows.map((r) => r.id), rows, name);
  const infoEl = document.getElementById(`${name}-info`);
  if (infoEl && info !== undefined) infoEl.textContent = info;
  if (name !== "search") mapView.highlight(name);
}

// Rows loaded into a virtual list at `offset` (a page of a long list, as it scrolls).
export function fillList(name, offset, rows) {
  const all = state.lists[name];
  remember(rows);
  rows.forEach((t, i) => { if (offset + i < all.length) all[offset + i] = t; });
  if (virtual[name]) virtual[name].refresh(offset, offset + rows.length);
}

// Rows added at the end of a list (a radio topped up), without redrawing the rows above.
export function appendToList(name, rows, info) {
  const start = state.lists[name].length;
  state.lists[name] = [...state.lists[name], ...remember(rows)];
  const ol = listElement(name);
  ol.append(...rows.filter((_, i) => start + i < MAX_ROWS).map((t, i) => trackRow(t, name, start + i)));
  const all = state.lists[name];
  document.getElementById(`${name}-m3u8`).href = m3u8Url(all.map((r) => r.id), all, name);
  if (info !== undefined) document.getElementById(`${name}-info`).textContent = info;
  mapView.highlight(name);
}

export function refreshRowMarks() {
  for (const li of document.querySelectorAll("li.track")) {
    const id = Number(li.dataset.id);
    li.classList.toggle("playing", state.playing === id);
    const mark = (action, on) => {
      const b = li.querySelector(`[data-action="${action}"]`);
      if (b) { b.classList.toggle("on", on); b.setAttribute("aria-pressed", String(on)); }
    };
    mark("like", state.likes.includes(id));
    mark("dislike", state.dislikes.includes(id));
    mark("set-a", state.pathA === id);
    mark("set-b", state.pathB === id);
  }
}

// The tabs switch the list panel; "map" (a tab only narrow screens show) shows the map in
// place of the lists, and leaves the list panel as it was for when the window widens.
export function showTab(name) {
  const layout = $(".layout");
  layout.classList.toggle("map-view", name === "map");
  for (const b of document.querySelectorAll(".tabs [role=tab]")) {
    const on = b.dataset.tab === name;
    b.classList.toggle("active", on);
    b.setAttribute("aria-selected", String(on));
    b.tabIndex = on ? 0 : -1;
  }
  if (name === "map") return;
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.dataset.panel !== name;
  for (const v of Object.values(virtual)) v.soon(); // a list shown again draws what is in view now
  mapView.highlight(name);
}

export function currentTab() {
  const active = document.querySelector(".tabs [role=tab].active");
  return active ? active.dataset.tab : "search";
}
