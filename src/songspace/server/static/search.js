// The track list: the whole library, or what a search finds (every word, in title, artist, album
// or genre, any case or accent: the catalog's search), in one virtualised list loaded a page at
// a time as it scrolls (GET /api/tracks?q=&offset=&limit=), so the first rows paint at once
// however large the library. Its playlist comes from the server (/api/search.m3u8?q=).

import { $, api, state } from "./core.js";
import { fillList, showList, virtualise } from "./lists.js";

const ROWS = 200;        // rows per request
let seq = 0;             // the search shown; answers to an older one are dropped
let asked = new Set();   // pages of it asked for

function info(first, last) {
  const total = state.searchTotal, q = state.searchQuery;
  if (total === 0) return q ? `Nothing matches “${q}”` : "The library is empty: add music with `songspace index FOLDER`, then press Update library";
  return `${first + 1}–${last} of ${total}${q ? ` matching “${q}”` : " tracks"}`;
}

function url(q, page) {
  return `/api/tracks?q=${encodeURIComponent(q)}&offset=${page * ROWS}&limit=${ROWS}`;
}

export async function search() {
  const q = $("#search").value.trim();
  const mine = ++seq;
  const found = await api(url(q, 0));
  if (mine !== seq) return; // a later search already answered
  state.searchTotal = found.total; state.searchQuery = q;
  asked = new Set([0]);
  const rows = new Array(found.total);
  found.items.forEach((t, i) => { rows[i] = t; });
  showList("search", rows, undefined, `/api/search.m3u8?q=${encodeURIComponent(q)}`);
}

// Load the page holding row `index` of the list shown (if not asked for yet, unless `again`).
async function loadPage(page, again = false) {
  if (asked.has(page) && !again) return;
  asked.add(page);
  const mine = seq, q = state.searchQuery;
  let found;
  try { found = await api(url(q, page)); } catch (e) { asked.delete(page); throw e; }
  if (mine !== seq) return;
  if (found.total !== state.lists.search.length) { search().catch(() => {}); return; } // the library changed meanwhile
  fillList("search", page * ROWS, found.items);
}

function need(from, to) {
  for (let p = Math.floor(from / ROWS); p <= Math.floor((to - 1) / ROWS); p++) loadPage(p).catch(() => {});
}

// Row `index` of the list, loaded first if need be (the player's next/previous).
export async function rowAt(index) {
  if (!state.lists.search[index]) await loadPage(Math.floor(index / ROWS), true);
  return state.lists.search[index];
}

let timer = null;
export function searchNow() {
  clearTimeout(timer);
  return search().catch(() => {});
}

export function searchSoon() {
  clearTimeout(timer);
  timer = setTimeout(() => search().catch(() => {}), 200);
}

export function setUpSearch() {
  virtualise("search", need, (first, last) => { $("#search-info").textContent = info(first, last); });
  $("#search").addEventListener("input", searchSoon);
  $("#search").addEventListener("keydown", (e) => { if (e.key === "Enter") searchNow(); });
}
