// songspace's page: plain JS modules over the JSON API (/api/...), no build step, nothing from
// outside. This module wires the parts together and starts them:
//   core.js     state, helpers, the API, toasts, hooks      lists.js    track rows, tabs
//   map.js      the map canvas                              player.js   audio, queue, keys
//   find.js     search, more like this, explain             radio.js    seeds, radio, top-up
//   journey.js  A → B                                       indexer.js  status, index runs

import { $, hooks, narrow, plural, state, toast } from "./core.js";
import { search, searchNow, searchSoon, showSimilar, toggleExplain } from "./find.js";
import { loadStatus, progressText, showIndex, startIndex } from "./indexer.js";
import { makeJourney, renderEnds, setEnd } from "./journey.js";
import { currentTab, showList, showTab } from "./lists.js";
import { mapView } from "./map.js";
import { audio, onAudioError, onKey, play, step } from "./player.js";
import { loadSeeds, makeRadio, onPlay, renderSeeds, startRadio, toggleSeed, topUpRadio } from "./radio.js";

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
  else if (action === "radio") startRadio(id);
  else if (action === "similar") showSimilar(id);
  else if (action === "like") toggleSeed("likes", id);
  else if (action === "dislike") toggleSeed("dislikes", id);
  else if (action === "set-a") setEnd("A", id);
  else if (action === "set-b") setEnd("B", id);
  else if (action === "explain") toggleExplain(li, id);
}

// A dot clicked on the map: play it and list its neighbours (on a narrow screen showing the
// map, the map stays in view: the neighbours are ringed on it).
function pickTrack(id) {
  play(id);
  showSimilar(id, { stay: narrow() && currentTab() === "map" });
}

function selectTracks(rows) {
  showTab("selection");
  showList("selection", rows, rows.length ? `${plural(rows.length, "track")} from the map` : "No dots in that box");
  const badge = $("#selection-badge");
  badge.hidden = rows.length === 0; badge.textContent = rows.length;
}

// What the page shows of the library, read again (after an index run, or when the server is back).
function refresh() {
  loadStatus();
  search(state.searchOffset).catch(() => {});
  mapView.load();
}

// Tabs as a WAI-ARIA tab list: ←/→ move between tabs (and show them).
function onTabKey(e) {
  if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
  const tabs = [...document.querySelectorAll(".tabs [role=tab]")].filter((b) => b.offsetParent !== null);
  const at = tabs.indexOf(e.target);
  if (at < 0) return;
  e.preventDefault();
  const next = tabs[(at + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
  showTab(next.dataset.tab);
  next.focus();
}

function wire() {
  Object.assign(hooks, { play, showSimilar, startRadio, topUpRadio, pickTrack, selectTracks, refresh });
  for (const ol of document.querySelectorAll("ol.tracks")) ol.addEventListener("click", onListClick);
  for (const b of document.querySelectorAll(".tabs [role=tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $(".tabs").addEventListener("keydown", onTabKey);
  $("#search").addEventListener("input", searchSoon);
  $("#search").addEventListener("keydown", (e) => { if (e.key === "Enter") searchNow(); });
  $("#search-prev").addEventListener("click", () => search(Math.max(0, state.searchOffset - 50)).catch(() => {}));
  $("#search-next").addEventListener("click", () => search(state.searchOffset + 50).catch(() => {}));
  $("#similar-query").addEventListener("click", (e) => {
    if (e.target.closest("[data-action=play-query]")) play(state.similarQuery);
    if (e.target.closest("[data-action=radio-query]")) startRadio(state.similarQuery);
  });
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
  $("#toast-close").addEventListener("click", () => { $("#toast").hidden = true; });
  $("#player-prev").addEventListener("click", () => step(-1));
  $("#player-next").addEventListener("click", () => step(1));
  $("#now-radio").addEventListener("click", () => state.playing !== null && startRadio(state.playing));
  $("#now-similar").addEventListener("click", () => state.playing !== null && showSimilar(state.playing));
  $("#now-like").addEventListener("click", () => state.playing !== null && toggleSeed("likes", state.playing));
  $("#now-dislike").addEventListener("click", () => state.playing !== null && toggleSeed("dislikes", state.playing));
  audio().addEventListener("ended", () => step(1));
  audio().addEventListener("error", onAudioError);
  document.addEventListener("songspace:play", onPlay);
  document.addEventListener("keydown", onKey);
}

function start() {
  wire();
  loadSeeds();
  renderSeeds();
  renderEnds();
  showTab("search");
  loadStatus();
  search(0).catch(() => {});
  mapView.load();
  // For tests and for anyone scripting the page.
  window.songspace = { state, map: mapView, play, showSimilar, startRadio, search, showIndex, progressText, toast };
}

start();
