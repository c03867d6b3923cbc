"""Getting the product's image collections onto disk as labelled image folders.

- `vaetune data fetch ygo`: card images from the public YGOPRODeck API (rate-limited, retried,
  resumable), see :func:`fetch_ygo`.
- `vaetune data fetch pokemon`: a Hugging Face dataset saved as PNGs, see :func:`fetch_pokemon`.
- `vaetune data fetch emoji|pokesprite`: the images of an npm package (vaetune.fetch.emoji,
  vaetune.fetch.pokesprite), its tarball pinned and checked.
- `vaetune data prepare villagers|apples|impressionism`: a Kaggle download (folder or .zip)
  turned into ``OUT/<label>/*`` plus a held-out ``OUT_test/<label>/*``, see :func:`prepare`.

Everything writes the layout the data module reads: ``data.source: OUT`` with folder labels.
"""

from __future__ import annotations

from vaetune.fetch._files import FetchReport
from vaetune.fetch._http import RateLimiter, RetryPolicy
from vaetune.fetch.pokemon import DEFAULT_POKEMON_DATASET, fetch_pokemon
from vaetune.fetch.prepare import PREPARERS, PrepareReport, held_out_dir, prepare
from vaetune.fetch.ygo import YGO_API, fetch_ygo

__all__ = [
    "DEFAULT_POKEMON_DATASET",
    "PREPARERS",
    "YGO_API",
    "FetchReport",
    "PrepareReport",
    "RateLimiter",
    "RetryPolicy",
    "fetch_pokemon",
    "fetch_ygo",
    "prepare",
    "held_out_dir",
]
