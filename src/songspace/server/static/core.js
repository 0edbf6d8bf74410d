// The page's shared ground: state, DOM and text helpers, the JSON API, toasts, and `hooks`
// (functions that higher modules register at start-up, so lower modules can call them
// without importing them: no import cycles).

export const $ = (sel) => document.querySelector(sel);

export const state = {
  tracks: new Map(),        // id -> the latest row seen for it (any list, or the map)
  lists: { search: [], similar: [], radio: [], journey: [], selection: [], album: [] }, // search: sparse, loaded as it scrolls
  searchTotal: 0, searchQuery: "",
  similarQuery: null,       // the track "more like this" is about
  likes: [], dislikes: [],  // ids
  pathA: null, pathB: null, // ids
  playing: null,            // id
  queue: null,              // {list, index}: what "next" plays
  radio: null,              // {seeds, avoid, seed, played: Set}: the radio being played, topped up as it runs
};

export const hooks = {};    // play, showSimilar, startRadio, ... (filled by app.js)

let serverDown = false;     // the last request found no server: say so once, and again when it is back

export async function api(url, options = {}) {
  let response;
  try {
    response = await fetch(url, {
      ...options,
      headers: { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}), ...(options.headers || {}) },
    });
  } catch (e) {
    serverDown = true;
    toast("The songspace server does not answer: is it still running? The page carries on when it is back.");
    throw e;
  }
  if (serverDown) {
    serverDown = false;
    toast("The server is back: the page reads the library again", "info");
    if (hooks.refresh) setTimeout(hooks.refresh, 0);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (typeof body.detail === "string") message = body.detail;
      else if (Array.isArray(body.detail)) message = body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    } catch (_) { /* not JSON */ }
    if (response.status === 401) message += " (sign in again: reload the page)";
    if (!options.quiet) toast(message);
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// Toasts live in their own row of the page's grid (above the player), so they push the
// layout instead of covering any control.
let toastTimer = null;
export function toast(message, kind = "error") {
  const box = $("#toast");
  box.querySelector(".toast-text").textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 7000 : 3000);
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || ["title", "role", "style", "tabindex"].includes(k)) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function clock(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(r).padStart(2, "0")}`;
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function baseName(path) {
  return (path || "").split(/[\\/]/).pop();
}

export function titleOf(t) {
  return t.title || baseName(t.path) || `track ${t.id}`;
}

export function labelOf(t) {
  if (!t) return "";
  return t.artist ? `${t.artist} – ${titleOf(t)}` : titleOf(t);
}

export function remember(rows) {
  for (const r of rows) if (r) state.tracks.set(r.id, { ...(state.tracks.get(r.id) || {}), ...r }); // (a sparse list has holes)
  return rows;
}

export function track(id) {
  return state.tracks.get(id) || { id };
}

// The server writes the playlist; a list too long for one URL (the server takes request lines
// up to ~16 KB) is written here instead, in the same form, as a file in memory.
const URL_LIMIT = 6000;
const blobUrls = {};

export function m3u8Url(ids, rows = null, name = "") {
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

// Narrow screens show either the lists or the map (the "Map" tab); wide ones show both.
export const narrow = () => window.matchMedia("(max-width: 820px)").matches;
