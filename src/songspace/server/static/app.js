// songspace's page: plain JS modules over the JSON API (/api/...), no build step, nothing from
// outside. This module wires the parts together and starts them:
//   core.js     state, helpers, the API, toasts, hooks      lists.js    track rows, tabs
//   virtual.js  a list that draws only the rows in view     search.js   the track list, search
//   albums.js   albums: covers, an album, play it           artists.js  artists and their albums
//   map.js      the map canvas                              player.js   audio, queue, keys
//   find.js     more like this, explain                     radio.js    seeds, radio, top-up
//   journey.js  A → B                                       indexer.js  status, index runs

import { $, hooks, narrow, plural, state, toast } from "./core.js";
import { forgetAlbums, openAlbumView, playAlbum, setUpAlbums, showAlbums } from "./albums.js";
import { forgetArtists, openArtist, setUpArtists, showArtists } from "./artists.js";
import { showSimilar, toggleExplain } from "./find.js";
import { loadStatus, progressText, showIndex, startIndex } from "./indexer.js";
import { makeJourney, renderEnds, setEnd } from "./journey.js";
import { currentTab, showList, showTab, virtualList, virtualise } from "./lists.js";
import { mapView } from "./map.js";
import { audio, checkPlaying, onAudioError, onKey, play, step } from "./player.js";
import { loadSeeds, makeRadio, onPlay, renderSeeds, startRadio, toggleSeed, topUpRadio } from "./radio.js";
import { rowAt, search, setUpSearch } from "./search.js";

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
  search().catch(() => {});
  forgetAlbums();
  forgetArtists();
  mapView.load();
  checkPlaying();
}

// A tab chosen: the album and artist tabs load what they show the first time they are seen.
function openTab(name) {
  if (name === "albums") showAlbums();
  else if (name === "artists") showArtists();
  else showTab(name);
}

// A row of a list loaded as it scrolls, fetched if need be (the player's next and previous).
function loadRow(list, index) {
  return list === "search" ? rowAt(index) : Promise.resolve(state.lists[list][index]);
}

// Tabs as a WAI-ARIA tab list: ←/→ move between tabs (and show them).
function onTabKey(e) {
  if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
  const tabs = [...document.querySelectorAll(".tabs [role=tab]")].filter((b) => b.offsetParent !== null);
  const at = tabs.indexOf(e.target);
  if (at < 0) return;
  e.preventDefault();
  const next = tabs[(at + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
  openTab(next.dataset.tab);
  next.focus();
}

function wire() {
  Object.assign(hooks, { play, showSimilar, startRadio, topUpRadio, pickTrack, selectTracks, refresh, loadRow,
    openArtist: (id) => openArtist(id).catch(() => {}) });
  for (const ol of document.querySelectorAll("ol.tracks")) ol.addEventListener("click", onListClick);
  for (const b of document.querySelectorAll(".tabs [role=tab]")) b.addEventListener("click", () => openTab(b.dataset.tab));
  $(".tabs").addEventListener("keydown", onTabKey);
  setUpSearch();
  virtualise("selection");
  setUpAlbums();
  setUpArtists();
  // An album's cover (in the grid or an artist's albums) opens it; its ▶ plays it.
  for (const grid of ["#album-grid", "#artist-albums"]) $(grid).addEventListener("click", (e) => {
    const play = e.target.closest("[data-play-album]"), open = e.target.closest("[data-album]");
    if (play) playAlbum(play.dataset.playAlbum).catch(() => {});
    else if (open) openAlbumView(open.dataset.album).catch(() => {});
  });
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
  search().catch(() => {});
  mapView.load();
  // For tests and for anyone scripting the page.
  window.songspace = { state, map: mapView, play, showSimilar, startRadio, search, showIndex, progressText, toast,
    list: virtualList, openTab };
}

start();
