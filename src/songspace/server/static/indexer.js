// The library's status line and index runs started from the page: the run's progress, phase
// by phase, as the server reports it (GET /api/index), and a refresh of everything when it ends.

import { $, api, baseName, hooks, plural, state, toast } from "./core.js";

let indexTimer = null, wasRunning = false, watchedRun = null; // watchedRun: the run this page saw going

export function showStatus(s) {
  state.searchable = s.searchable !== undefined ? s.searchable : s.ok;
  const parts = [plural(s.ok, "track")];
  if (s.searchable !== undefined && s.searchable !== s.ok) parts.push(`${s.searchable} searchable`);
  if (s.failed) parts.push(`${s.failed} failed`);
  if (s.silent || s.too_short) parts.push(`${(s.silent || 0) + (s.too_short || 0)} silent or too short`);
  parts.push(`model ${s.searched_model || (s.model && s.model.id) || "?"}`);
  const status = $("#status");
  status.textContent = parts.join(" · ");
  const failures = (s.failures || []).slice(0, 20).map(([path, why]) => `${baseName(path)}: ${why}`);
  status.title = [`Library: ${s.library}`, `Folders: ${(s.folders || []).join(", ") || "none"}`,
    ...(s.servers && s.servers.length ? [`Servers: ${s.servers.join(", ")}`] : []), ...failures].join("\n");
  if (s.index) showIndex(s.index);
}

export function showIndex(p) {
  const box = $("#index-box"), bar = $("#index-progress"), note = $("#index-note"), button = $("#index-start");
  button.disabled = !!p.running;
  button.textContent = p.running ? "Indexing…" : "Update library";
  if (p.running) {
    watchedRun = p.started;
    box.hidden = false;
    note.textContent = progressText(p);
    // Nothing done yet is not 0% of the way: the bar says "under way" until a first step ends.
    if (p.total > 0 && p.done > 0) { bar.max = p.total; bar.value = p.done; } else bar.removeAttribute("value");
    if (!indexTimer) indexTimer = setInterval(pollIndex, 1000);
  } else {
    if (indexTimer) { clearInterval(indexTimer); indexTimer = null; }
    if (watchedRun === "next") watchedRun = p.started; // started here, and over before the first poll
    const ours = watchedRun !== null && p.started === watchedRun;
    if (p.error && ours) { box.hidden = false; bar.hidden = true; note.textContent = `The run failed: ${p.error}`; }
    else if (p.report && ours) {
      box.hidden = false; bar.hidden = true;
      const r = p.report;
      note.textContent = `Done: ${r.added} added, ${r.updated} updated, ${r.removed} removed, ${r.failed} failed`
        + (r.notes && r.notes.length ? `. ${r.notes.join(". ")}` : "");
    } else box.hidden = true;
    if (wasRunning) onIndexFinished();
  }
  if (p.running) bar.hidden = false;
  wasRunning = !!p.running;
}

async function pollIndex() {
  try { showIndex(await api("/api/index")); } catch (_) { /* toast shown */ }
}

export async function loadStatus() {
  try { showStatus(await api("/api/status")); } catch (e) { $("#status").textContent = `Library unavailable: ${e.message}`; }
}

export async function startIndex() {
  try {
    await api("/api/index", { method: "POST" });
    toast("Indexing started: the library stays usable meanwhile", "info");
    wasRunning = true;
    watchedRun = "next";
    await pollIndex();
  } catch (_) { /* toast shown */ }
}

function onIndexFinished() {
  hooks.refresh();
}

// One line for a running index: the phase, how far it is, and what it works on. Analysis is
// counted in bytes of audio (big files weigh more) and in files finished; before the first file
// finishes the workers are starting (loading the model), and the line says so, not "0%".
export function progressText(p) {
  const phase = p.phase || "working";
  if (phase === "analyse" && !(p.done > 0)) return `analyse: starting the workers, the first files are being read${p.note ? ` · ${p.note}` : ""}`;
  const pct = p.total > 0 ? ` ${Math.floor((100 * p.done) / p.total)}%` : "";
  const files = phase === "analyse" && p.files ? ` · ${plural(p.files, "file")} done` : "";
  return `${phase}${pct}${files}${p.note ? ` · ${p.note}` : ""}`;
}
