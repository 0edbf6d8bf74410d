"""Search while `use` re-embeds the library (issue 22, item 6): no question fails, and every answer
comes from one model, the previous one until the new one has embedded every track.

The library switches to the MFCC baseline and back, re-embedding each time, while two threads ask
`similar` of the same server: one through the HTTP API (a third of the tracks a round), one
through the app's Searcher directly (every track). After each track is stored, indexing waits
until both threads have finished a round begun since, so every state the catalog passes
through is asked about (no timing);
the two threads also race each other, one catching the shared index up while the other is
between its search and its look-ups.
"""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
from fastapi.testclient import TestClient

from songspace import Library
from songspace.baselines import MFCC_METHOD
from songspace.recommend.similar import Manners, similar
from songspace.server import create_app

K = 5
RAW = Manners(collapse_copies=False)  # every hit listed with its own score: each can be checked


class Rounds:
    """How many rounds of questions each asking thread has finished; indexing waits on it."""

    def __init__(self, names):
        self.cond = threading.Condition()
        self.begun = dict.fromkeys(names, 0)
        self.done = dict.fromkeys(names, 0)
        self.stop = threading.Event()
        self.failures: list[str] = []

    def finished(self, name: str) -> None:
        with self.cond:
            self.done[name] += 1
            self.cond.notify_all()

    def crashed(self, name: str, e: BaseException) -> None:
        self.failures.append(f"{name} thread: {type(e).__name__}: {e}")
        self.stop.set()
        with self.cond:
            self.cond.notify_all()

    def started(self, name: str) -> None:
        with self.cond:
            self.begun[name] += 1

    def wait_for_fresh_rounds(self) -> None:
        """Until every thread has finished a whole round begun after this call."""
        with self.cond:
            begun = dict(self.begun)
            # The timeout only keeps a broken test from hanging: the rounds never depend on it.
            assert self.cond.wait_for(lambda: self.stop.is_set() or all(self.done[n] > begun[n] for n in begun),
                                      timeout=300)


def test_similar_keeps_answering_from_one_model_while_use_reembeds(indexed_library):
    app = create_app(indexed_library, index_workers=0)
    with TestClient(app, base_url="http://127.0.0.1") as client, Library.open(indexed_library) as lib:
        searcher = app.state.searcher
        ids = [int(i) for i in searcher.ids()]
        assert len(ids) == 12
        models = {"shipped": dict(zip(*searcher.all_vectors()))}  # {model: {track id: vector as searched}}
        answers: list[tuple[str, int, list[tuple[int, float]]]] = []  # (who asked, query, hits)
        rounds = Rounds(["http", "searcher"])

        def over_http():
            turn = 0
            while not rounds.stop.is_set():
                rounds.started("http")
                turn += 1
                for q in ids[turn % 3 :: 3]:  # a third of the tracks a round: HTTP costs ~50 ms a request here
                    r = client.get(f"/api/tracks/{q}/similar", params={"k": K, "keep_copies": True})
                    if r.status_code != 200:
                        rounds.failures.append(f"http: similar {q}: {r.status_code} {r.text}")
                        continue
                    answers.append(("http", q, [(i["id"], i["cosine"]) for i in r.json()["items"]]))
                rounds.finished("http")

        def through_searcher():
            while not rounds.stop.is_set():
                rounds.started("searcher")
                for q in ids:  # every track, after every change
                    try:
                        found = similar(searcher, q, K, RAW)
                    except Exception as e:  # noqa: BLE001 (a QueryError here is what the API answers with 404 or 400)
                        rounds.failures.append(f"searcher: similar {q}: {type(e).__name__}: {e}")
                        continue
                    answers.append(("searcher", q, [(m.track.id, m.cosine) for m in found]))
                rounds.finished("searcher")

        def run(name, target):
            try:
                target()
            except BaseException as e:  # noqa: BLE001 (reported, and the test stops)
                rounds.crashed(name, e)

        threads = [threading.Thread(target=run, args=("http", over_http)),
                   threading.Thread(target=run, args=("searcher", through_searcher))]
        for t in threads:
            t.start()
        stored = []

        def after_each_track(phase, done, total, note):
            if phase == "analyse" and done:
                stored.append(note)
                rounds.wait_for_fresh_rounds()

        try:
            rounds.wait_for_fresh_rounds()
            lib.use_model("mfcc")
            lib.index(lib.catalog.folders(), workers=0, report=after_each_track)
            rounds.wait_for_fresh_rounds()
            assert searcher.model_id == MFCC_METHOD
            models["mfcc"] = dict(zip(*searcher.all_vectors()))
            lib.use_model("default")
            lib.index(lib.catalog.folders(), workers=0, report=after_each_track)
            rounds.wait_for_fresh_rounds()
        finally:
            rounds.stop.set()
            for t in threads:
                t.join()

        assert len(stored) == 24  # every track re-embedded twice, with questions after each
        kinds = Counter(" ".join(f.split()[:1] + f.split(": ")[2].split()[:1]) for f in rounds.failures)
        assert rounds.failures == [], f"{len(rounds.failures)} failed questions: {dict(kinds)}; first: {rounds.failures[:3]}"
        assert searcher.model_id == lib.model_id and lib.catalog.models() == {lib.model_id: 12}
        back = dict(zip(*searcher.all_vectors()))  # the shipped model again: the same vectors
        for i in ids:
            np.testing.assert_allclose(back[i], models["shipped"][i], atol=1e-4)

    # Every answer: K tracks of the library, the query not among them, each at the cosine of the
    # vectors of one model (the order may be the timbre fusion's: rerank.py), the same model for the query and every hit.
    assert {who for who, _, _ in answers} == {"http", "searcher"}
    by_model = {name: 0 for name in models}
    for who, q, hits in answers:
        assert len(hits) == K and q not in {i for i, _ in hits} and {i for i, _ in hits} <= set(ids), (who, q, hits)
        fits = [name for name, v in models.items()
                if all(abs(float(v[q] @ v[i]) - s) < 1e-3 for i, s in hits)]
        assert fits, f"{who}: similar {q} answered {hits}: scores of no single model"
        by_model[fits[0]] += 1
    assert all(by_model.values()), by_model  # both models answered: the test saw the switch


def test_a_question_keeps_its_snapshot_while_another_sees_the_change(tmp_path):
    """The race behind the 400s: a search finds a track, the catalog removes it, another thread's
    question applies that; the first question's look-ups still find what its search found, and
    its next question sees the track gone."""
    from songspace.catalog import Catalog
    from songspace.query import Searcher

    cat = Catalog(tmp_path / "catalog.sqlite")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((20, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [cat.put_ok(f"/music/{i}.flac", size=1, mtime=1.0, content_hash=str(i), duration=60.0, tags={},
                      model_id="test-model", vector=v) for i, v in enumerate(vectors)]
    searcher = Searcher(cat.path)
    try:
        with searcher.snapshot():
            nearest = searcher.search(vectors[0], 3, exclude={ids[0]})[0]
            gone = nearest[0][0]
            cat.remove([gone])
            seen = {}
            other = threading.Thread(target=lambda: seen.update(n=len(searcher), ids=set(searcher.ids().tolist())))
            other.start()
            other.join()
            # The other thread answered without waiting, from the snapshot it could have: not
            # changed in place under this question.
            assert seen["n"] == 20 and gone in seen["ids"]
            np.testing.assert_allclose(searcher.vectors([i for i, _ in nearest]), vectors[[ids.index(i) for i, _ in nearest]],
                                       atol=1e-6)
            assert [t.id for t in searcher.tracks([i for i, _ in nearest[1:]])] == [i for i, _ in nearest[1:]]
        assert len(searcher) == 19 and gone not in searcher.ids()  # the next question sees the change
        assert gone not in {i for i, _ in searcher.search(vectors[0], 19)[0]}
    finally:
        searcher.close()
        cat.close()
