// Albums, as a player shows them: a grid of covers (grouped as the Subsonic view groups them:
// album artist and album, compilations under "Various Artists"), loaded a page at a time; an
// album opened shows its tracks in disc and track order. ▶ on a cover plays the album at once.

import { $, api, clock, el, hooks, plural, state } from "./core.js";
import { showList, showTab } from "./lists.js";

const PAGE = 60;
const albums = { items: [], total: null, loading: false }; // the grid: what is loaded so far
export let openAlbum = null;                                // the album shown, with its tracks

function byline(a) {
  return [a.artist, a.year].filter(Boolean).join(" · ");
}

// One album as a card: the cover and names open it, ▶ plays it.
export function albumCard(a) {
  const name = `${a.name} by ${a.artist}`;
  return el("li", { class: "album-card", "data-id": a.id, "data-testid": "album-card" },
    el("button", { class: "album-open", "data-album": a.id, title: `Open ${name}`, "aria-label": `Open the album ${name}` },
      el("img", { class: "cover", src: a.cover + "?size=200", alt: "", loading: "lazy", width: 200, height: 200 }),
      el("span", { class: "album-name", text: a.name }),
      el("span", { class: "album-by", text: byline(a) })),
    el("div", { class: "cover-spot" }, // the cover's square, over it: ▶ in its corner
      el("button", { class: "album-play", "data-play-album": a.id, title: "Play the album", "aria-label": `Play the album ${name}`, text: "▶" })));
}

function showGrid() {
  $("#album-view").hidden = true;
  $("#album-browser").hidden = false;
  const n = albums.total;
  $("#albums-info").textContent = n === 0 ? "No albums: the library is empty" : n === null ? "" : `${plural(n, "album")}${albums.items.length < n ? ` · ${albums.items.length} shown` : ""}`;
  $("#albums-more").hidden = n === null || albums.items.length >= n;
}

async function loadMore() {
  if (albums.loading) return;
  albums.loading = true;
  try {
    const found = await api(`/api/albums?offset=${albums.items.length}&limit=${PAGE}`);
    albums.total = found.total;
    albums.items.push(...found.items);
    $("#album-grid").append(...found.items.map(albumCard));
  } finally { albums.loading = false; showGrid(); }
}

// The Albums tab: the grid (loaded the first time it is shown, or after the library changed).
export function showAlbums() {
  showTab("albums");
  if (albums.total === null) loadMore().catch(() => {});
  else if (!openAlbum) showGrid();
}

// The library changed: the grid and the album shown are read again when next seen.
export function forgetAlbums() {
  albums.items = []; albums.total = null;
  $("#album-grid").replaceChildren();
  if (openAlbum) openAlbumView(openAlbum.id, { stay: true }).catch(() => closeAlbum());
  else if (!$("#panel-albums").hidden) loadMore().catch(() => {});
}

async function fetchAlbum(id) {
  const a = await api(`/api/albums/${encodeURIComponent(id)}`);
  a.tracks = a.tracks.map((t) => ({ ...t, album_id: a.id }));
  return a;
}

function discNote(a) {
  const discs = new Set(a.tracks.map((t) => t.disc || 1));
  return discs.size > 1 ? ` on ${discs.size} discs` : "";
}

// An album opened: its cover, names, and tracks (disc by disc, in track order).
export async function openAlbumView(id, { stay = false } = {}) {
  if (!stay) showTab("albums");
  const a = await fetchAlbum(id);
  if (state.queue && state.queue.list === "album" && openAlbum && openAlbum.id !== a.id) {
    // Another album opened while one plays: the one playing stays the queue.
    state.lists.queued = state.lists.album;
    state.queue = { list: "queued", index: state.queue.index };
  }
  openAlbum = a;
  $("#album-browser").hidden = true;
  $("#album-view").hidden = false;
  $("#album-cover").src = a.cover + "?size=300";
  $("#album-cover").alt = a.picture ? `Cover of ${a.name}` : "";
  $("#album-title").textContent = a.name;
  const by = $("#album-artist");
  by.textContent = a.artist; by.dataset.artist = a.artist_id;
  by.setAttribute("aria-label", `Artist: ${a.artist} (show their albums)`);
  $("#album-meta").textContent = [a.year, a.genre, `${plural(a.song_count, "track")}${discNote(a)}`, clock(a.duration)].filter(Boolean).join(" · ");
  $("#album-play").setAttribute("aria-label", `Play the album ${a.name} by ${a.artist}`);
  showList("album", a.tracks, "");
  if (stay && state.queue && state.queue.list === "album") { // read again while it plays: the queue follows
    const at = a.tracks.findIndex((t) => t.id === state.playing);
    state.queue = { list: "album", index: at >= 0 ? at : state.queue.index - 1 }; // gone: "next" is the one after it
  }
  return a;
}

export function closeAlbum() {
  openAlbum = null;
  showGrid();
  if (albums.total === null) loadMore().catch(() => {});
}

// ▶ on an album: its tracks become the queue, from the first.
export async function playAlbum(id) {
  const a = openAlbum && openAlbum.id === id ? openAlbum : await openAlbumView(id);
  if (!a.tracks.length) return;
  if (state.lists.album !== a.tracks) showList("album", a.tracks, "");
  hooks.play(a.tracks[0].id, { list: "album", index: 0 });
}

export function setUpAlbums() {
  $("#albums-more").addEventListener("click", () => loadMore().catch(() => {}));
  $("#album-back").addEventListener("click", closeAlbum);
  $("#album-play").addEventListener("click", () => openAlbum && playAlbum(openAlbum.id).catch(() => {}));
  $("#album-artist").addEventListener("click", (e) => hooks.openArtist(e.currentTarget.dataset.artist));
}
