// Artists: everyone the library credits (album artists, and the artists of tracks), by name,
// loaded a page at a time; an artist opened shows their albums (for an artist with none of
// their own, the albums their tracks are on) as covers to open or play.

import { $, api, el, plural } from "./core.js";
import { albumCard } from "./albums.js";
import { showTab } from "./lists.js";

const PAGE = 100;
const artists = { items: [], total: null, loading: false };
let openId = null;

function artistRow(a) {
  return el("li", { class: "artist-row", "data-id": a.id },
    el("button", { class: "artist-open", "data-artist": a.id, "aria-label": `Open the artist ${a.name}` },
      el("span", { class: "artist-name", text: a.name }),
      el("span", { class: "artist-counts", text: [a.album_count ? plural(a.album_count, "album") : "", plural(a.song_count, "track")].filter(Boolean).join(" · ") })));
}

function showIndex() {
  $("#artist-view").hidden = true;
  $("#artist-browser").hidden = false;
  const n = artists.total;
  $("#artists-info").textContent = n === 0 ? "No artists: the library is empty" : n === null ? "" : `${plural(n, "artist")}${artists.items.length < n ? ` · ${artists.items.length} shown` : ""}`;
  $("#artists-more").hidden = n === null || artists.items.length >= n;
}

async function loadMore() {
  if (artists.loading) return;
  artists.loading = true;
  try {
    const found = await api(`/api/artists?offset=${artists.items.length}&limit=${PAGE}`);
    artists.total = found.total;
    artists.items.push(...found.items);
    $("#artist-index").append(...found.items.map(artistRow));
  } finally { artists.loading = false; showIndex(); }
}

export function showArtists() {
  showTab("artists");
  if (artists.total === null) loadMore().catch(() => {});
  else if (openId === null) showIndex();
}

export function forgetArtists() {
  artists.items = []; artists.total = null;
  $("#artist-index").replaceChildren();
  if (openId !== null) openArtist(openId, { stay: true }).catch(() => closeArtist());
  else if (!$("#panel-artists").hidden) loadMore().catch(() => {});
}

// An artist opened: their albums, by year.
export async function openArtist(id, { stay = false } = {}) {
  if (!stay) showTab("artists");
  const a = await api(`/api/artists/${encodeURIComponent(id)}`);
  openId = a.id;
  $("#artist-browser").hidden = true;
  $("#artist-view").hidden = false;
  $("#artist-title").textContent = a.name;
  $("#artist-meta").textContent = [plural(a.album_count, "album"), plural(a.song_count, "track")].filter(Boolean).join(" · ");
  $("#artist-albums").replaceChildren(...a.albums.map(albumCard));
}

export function closeArtist() {
  openId = null;
  showIndex();
  if (artists.total === null) loadMore().catch(() => {});
}

export function setUpArtists() {
  $("#artists-more").addEventListener("click", () => loadMore().catch(() => {}));
  $("#artist-back").addEventListener("click", closeArtist);
  $("#artist-index").addEventListener("click", (e) => {
    const b = e.target.closest("[data-artist]");
    if (b) openArtist(b.dataset.artist).catch(() => {});
  });
}
