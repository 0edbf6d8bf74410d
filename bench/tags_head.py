"""What the tags head costs at the end of `index`: `autotags.refresh` over a catalog of N tracks
(random unit vectors stored as the shipped model's), CPU seconds per track, beside the head's
matrix product alone. Compare with indexing's own cost per track (docs/model-card.md, "Cost").

  .venv/bin/python bench/tags_head.py --tracks 5000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from songspace import autotags
from songspace import method as methods
from songspace.catalog import Catalog
from songspace.models.tags_head import load_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=5000)
    args = parser.parse_args()
    head = load_head()
    method = methods.resolve(methods.DEFAULT)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.tracks, head.weight.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "catalog.sqlite")
        methods.use(catalog, method)
        for n, v in enumerate(vectors):
            catalog.put_ok(f"/music/{n}.flac", size=1, mtime=0.0, content_hash=f"{n:064x}", duration=240.0,
                           tags={}, model_id=method.id, vector=v)
        began = time.process_time()
        done = autotags.refresh(catalog)
        refresh = time.process_time() - began
        catalog.close()
    began = time.process_time()
    head.probabilities(vectors)
    product = time.process_time() - began
    print(f"{done.tracks} tracks: refresh {refresh / done.tracks * 1e6:.1f} CPU-µs per track "
          f"(read the vectors, the product, store 2 predictions), the product alone {product / done.tracks * 1e6:.2f}")


if __name__ == "__main__":
    main()
