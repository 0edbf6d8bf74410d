"""Tags out of the box: each track's predicted genre and mood, from the model's tags head.

The head (models/tags_head.py) is a linear layer on the track vector, so the tags of a whole
library are one matrix product over the stored vectors: `refresh` runs it at the end of `index`
(or whenever asked) and stores, per track, its most distinctive genre and mood (`lift`) in the
catalog's predictions table under "auto-genre" and "auto-mood": apart from the file's own
genre tag, and apart from what `classify` learnt from the user's labels. A method without a head
(MFCC statistics, a fitted or trained model file) has no tags; `refresh` then says why, once.

Reads and writes the catalog; imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import method as methods
from .catalog import Catalog
from .errors import InputError, QueryError
from .models.tags_head import TagsHead, load_head

NAMES = {"genre": "auto-genre", "mood": "auto-mood"}  # predictions' names, one per tag group


@dataclass(frozen=True)
class Refreshed:
    model_id: str
    tracks: int  # how many tracks got tags
    note: str  # one line for the user: what was done, or why there are no tags


def head_of(method: methods.Method) -> TagsHead | None:
    """The tags head of a library's method: None for a method without a model file or a head."""
    return load_head(method.file) if method.file is not None else None


def unavailable(method: methods.Method) -> str:
    return (f"tags unavailable: {method.id} has no tags head (only the shipped model has one; "
            "a fitted or trained model's vectors are not those the head learnt from)")


def lift(head: TagsHead, probs: np.ndarray) -> np.ndarray:
    """Each probability over its tag's mean on the training corpus (the head's "prior"): how much
    more than usual a track is that tag. Ranking by it, not by probability, because the teacher
    learnt pop music's frequencies: by raw probability nearly every game track is "electronic"
    and "calm", and "happy" never wins."""
    prior = np.asarray(head.info.get("prior") or np.ones(len(head.names)), dtype=np.float32)
    return probs / np.maximum(prior, 1e-6)


def best_per_group(head: TagsHead, probs: np.ndarray) -> dict[str, list[tuple[str, float]]]:
    """For each group, each row's most distinctive tag (highest `lift`) and its probability."""
    found = {}
    above = lift(head, probs)
    for group in head.group_names():
        cols = head.group(group)
        best = above[:, cols].argmax(axis=1)
        found[group] = [(head.names[cols[b]], float(probs[r, cols[b]])) for r, b in enumerate(best)]
    return found


STAMP = "autotags"  # meta: "MODEL_ID SEQ": the stored tags are those of that model, up to that change-log row


def refresh(catalog: Catalog, full: bool = False) -> Refreshed:
    """Predict and store the tags of the tracks the library's current method has embedded (a
    writer catalog): those changed since the last refresh by the same method (the change log
    says which), or every one (`full`, another method, or no refresh yet)."""
    method = methods.current(catalog)
    head = head_of(method)
    if head is None:  # another model's tags would describe vectors no longer searched
        if any(stored(catalog).values()):
            for name in NAMES.values():
                catalog.put_predictions(name, method.id, [])
        return Refreshed(method.id, 0, unavailable(method))
    last = catalog.last_change()  # before reading: a change made meanwhile is redone next time
    changed = None if full else changed_since_refresh(catalog, method.id)
    if changed == []:
        return Refreshed(method.id, 0, "tags: no track changed, the stored tags stand")
    if changed is None:
        batches = (([r[0] for r in b], np.stack([np.frombuffer(r[-1], dtype=np.float32) for r in b]))
                   for b in catalog.embedded_rows(method.id))
    else:
        batches = [catalog.vectors_of(changed, method.id)]
    rows: dict[str, list[tuple[int, str, float]]] = {g: [] for g in head.group_names()}
    for ids, vectors in batches:
        if not len(ids):
            continue
        ids = [int(i) for i in ids]
        for group, best in best_per_group(head, head.probabilities(vectors)).items():
            rows[group] += [(i, tag, p) for i, (tag, p) in zip(ids, best)]
    for group, found in rows.items():
        catalog.put_predictions(NAMES.get(group, f"auto-{group}"), method.id, found, only=changed)
    catalog.set_meta(STAMP, f"{method.id} {last}")  # after the tags: a run stopped between redoes them
    n = len(next(iter(rows.values()), []))
    return Refreshed(method.id, n, f"tags: {n} tracks tagged ({', '.join(head.group_names())}) by {method.id}'s tags head")


def changed_since_refresh(catalog: Catalog, model_id: str) -> list[int] | None:
    """Ids of the tracks changed since the last refresh by `model_id` (None: tag them all)."""
    stamp = (catalog.get_meta(STAMP) or "").split()
    if len(stamp) != 2 or stamp[0] != model_id or not stamp[1].isdigit():
        return None
    since = catalog.changes_since(int(stamp[1]))
    return None if since is None else since[1]


def stored(catalog: Catalog) -> dict[str, dict[int, tuple[str, float]]]:
    """{group: {track id: (tag, probability)}} as last stored by `refresh`."""
    return {group: catalog.predictions(name) for group, name in NAMES.items()}


def stored_for(catalog: Catalog, track_ids) -> dict[str, dict[int, tuple[str, float]]]:
    """`stored` for these tracks only (the rows of one answer)."""
    return {group: catalog.predictions_of(name, track_ids) for group, name in NAMES.items()}


def summary(catalog: Catalog) -> dict[str, dict[str, int]]:
    """{group: {tag: tracks}} of the stored tags, most frequent first (for `status`)."""
    out = {}
    for group, found in stored(catalog).items():
        counts: dict[str, int] = {}
        for tag, _ in found.values():
            counts[tag] = counts.get(tag, 0) + 1
        if counts:
            out[group] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def tagged(catalog: Catalog, **wanted: str | None) -> set[int] | None:
    """Ids of the tracks whose stored tag of each group given (genre="jazz", mood="calm") is that
    tag; None when nothing is asked. An unknown tag is an InputError listing the known ones."""
    wanted = {g: t.strip().casefold() for g, t in wanted.items() if t is not None}
    if not wanted:
        return None
    method = methods.current(catalog)
    head = head_of(method)
    if head is None:
        raise QueryError(unavailable(method))
    found = stored(catalog)
    keep: set[int] | None = None
    for group, tag in wanted.items():
        known = [head.names[i] for i in head.group(group)]
        if tag not in known:
            raise InputError(f"no {group} tag {tag!r}; known {group} tags: {', '.join(known)}", param=group)
        ids = {i for i, (t, _) in found.get(group, {}).items() if t == tag}
        keep = ids if keep is None else keep & ids
    return keep
