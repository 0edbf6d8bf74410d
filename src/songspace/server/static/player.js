// The player: one <audio>, a queue (a list and a position in it), next/previous, the keyboard,
// and the player bar's title. Every track that starts is announced as a "songspace:play"
// event (the radio listens, to top itself up).

import { $, hooks, labelOf, state, toast, track } from "./core.js";
import { refreshRowMarks } from "./lists.js";
import { mapView } from "./map.js";

export const audio = () => $("#audio");

export function play(id, queue = null, at = null) {
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
  player.play().catch((e) => { if (e.name !== "AbortError" && e.name !== "NotSupportedError") toast(`Cannot play ${labelOf(t)}: ${e.message}`); });
  $("#now-playing").textContent = labelOf(t);
  $("#now-sub").textContent = [t.album, t.genre].filter(Boolean).join(" · ");
  for (const b of ["#now-similar", "#now-like", "#now-dislike", "#now-radio"]) $(b).disabled = false;
  $("#now-radio").setAttribute("aria-label", `Radio from this track: ${labelOf(t)}`);
  document.title = `${labelOf(t)} · songspace`;
  refreshRowMarks();
  mapView.draw();
  document.dispatchEvent(new CustomEvent("songspace:play", { detail: { id, queue: state.queue } }));
}

export function step(delta) {
  const q = state.queue;
  if (!q) return;
  const rows = state.lists[q.list] || [];
  const index = q.index + delta;
  if (index >= 0 && index < rows.length && rows[index]) play(rows[index].id, { list: q.list, index });
  else if (index >= 0 && index < rows.length) { // a long list loads as it scrolls: this row is not here yet
    hooks.loadRow(q.list, index).then((t) => { if (t && state.queue === q) play(t.id, { list: q.list, index }); }).catch(() => {});
  }
  else if (delta > 0 && q.list === "radio" && state.radio) hooks.topUpRadio(true); // plays on when more arrive
}

function togglePause() {
  const a = audio();
  if (!a.src) return;
  if (a.paused) a.play().catch(() => {}); else a.pause();
}

function seek(by) {
  const a = audio();
  if (a.src && isFinite(a.duration)) a.currentTime = Math.max(0, Math.min(a.duration, a.currentTime + by));
}

// The player from the keyboard: space plays/pauses, ←/→ seek 5 s, ↑/↓ volume, n/p next and
// previous. Keys typed into a field are the field's; space on a button or link presses it,
// and the <audio> element's own controls keep their keys.
export function onKey(e) {
  if (e.target.matches("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.matches("audio")) return;
  const onControl = e.target.matches("button, a[href], [role=tab], summary, canvas");
  const quiet = e.target === document.body || !!e.target.closest(".player"); // ↑/↓ scroll lists elsewhere
  if (e.key === "/") { e.preventDefault(); $("#search").focus(); }
  else if (e.key === " " && !onControl) { e.preventDefault(); togglePause(); }
  else if (e.key === "ArrowRight" && !e.target.matches("[role=tab]")) { e.preventDefault(); seek(5); }
  else if (e.key === "ArrowLeft" && !e.target.matches("[role=tab]")) { e.preventDefault(); seek(-5); }
  else if (e.key === "ArrowUp" && quiet) { e.preventDefault(); audio().volume = Math.min(1, audio().volume + 0.1); }
  else if (e.key === "ArrowDown" && quiet) { e.preventDefault(); audio().volume = Math.max(0, audio().volume - 0.1); }
  else if (e.key === "n" || e.key === "N") step(1);
  else if (e.key === "p" || e.key === "P") step(-1);
  else if (e.key === "Escape") mapView.setSelectMode(false);
}

// What went wrong with the audio, in words: the file may be gone since the page listed it.
export async function onAudioError() {
  const a = audio();
  if (!a.src || state.playing === null) return;
  const t = track(state.playing);
  let why = "its format is one this browser cannot play";
  try {
    const r = await fetch(`/api/tracks/${state.playing}`, { headers: { Accept: "application/json" } });
    if (r.status === 404) why = "it is no longer in the library";
    else {
      const head = await fetch(a.src, { headers: { Range: "bytes=0-0" } });
      if (head.status === 404) why = "its file is missing (moved or deleted since the last update)";
    }
  } catch (_) { why = "the server does not answer"; }
  toast(`Cannot play ${labelOf(t)}: ${why}. Skipping to the next track.`);
  $("#now-sub").textContent = `Not playable: ${why}`;
  step(1);
}

// After the library changed (an update, the server back): if what plays has left it, say so.
// It plays on from what the browser holds until it ends or fails; the queue goes on from where
// it stood (the lists were read again without it).
export async function checkPlaying() {
  const id = state.playing;
  if (id === null) return;
  let r = null;
  try { r = await fetch(`/api/tracks/${id}`, { headers: { Accept: "application/json" } }); } catch (_) { return; }
  if (r.status !== 404 || state.playing !== id) return;
  toast(`“${labelOf(track(id))}” was removed from the library (its file is gone); the queue goes on without it`, "info");
  $("#now-sub").textContent = "Removed from the library";
}
