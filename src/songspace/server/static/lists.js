// Track lists: one row shape everywhere (search, similar, radio, journey, selection), the
// marks on rows (playing, liked, A/B), and the tabs. Clicks are handled by app.js.

import { $, clock, el, labelOf, m3u8Url, remember, state, titleOf } from "./core.js";
import { mapView } from "./map.js";

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
    t.score !== undefined ? el("span", { class: "score", title: "Similarity (cosine)", text: t.score.toFixed(2) })
      : t.step !== undefined ? el("span", { class: "score step", title: "Step: cosine distance from the previous track", text: index ? `+${t.step.toFixed(3)}` : "start" }) : null,
    el("span", { class: "dur", text: clock(t.duration) }),
    actions,
  );
}

const MAX_ROWS = 1000; // a list longer than this shows its first rows; play and M3U8 use all

export function listElement(name) {
  return document.getElementById(name === "search" ? "search-results" : `${name}-list`);
}

export function showList(name, rows, info) {
  state.lists[name] = remember(rows);
  const ol = listElement(name);
  ol.replaceChildren(...rows.slice(0, MAX_ROWS).map((t, i) => trackRow(t, name, i)));
  if (rows.length > MAX_ROWS) ol.append(el("li", { class: "more", text: `… and ${rows.length - MAX_ROWS} more (all of them are in the M3U8)` }));
  const link = document.getElementById(`${name}-m3u8`);
  link.hidden = rows.length === 0;
  if (rows.length) link.href = m3u8Url(rows.map((r) => r.id), rows, name);
  const infoEl = document.getElementById(`${name}-info`);
  if (infoEl && info !== undefined) infoEl.textContent = info;
  if (name !== "search") mapView.highlight(name);
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
  mapView.highlight(name);
}

export function currentTab() {
  const active = document.querySelector(".tabs [role=tab].active");
  return active ? active.dataset.tab : "search";
}
