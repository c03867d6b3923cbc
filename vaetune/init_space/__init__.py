"""A first search space for any folder (or .zip) of images, sized to the images and the machine.

Three steps, each usable on its own (``vaetune init`` runs them in order):

1. :func:`inspect_source` lists the source with the data module's own listing (so it sees the
   files and labels a search will see) and reads every image's **header** only (size, mode;
   Pillow's ``Image.open`` without ``load()``): counts, skipped files, sizes, aspect ratios,
   channels, labels. Whether transparency is actually *used* needs pixels, so a seeded sample of
   at most :data:`ALPHA_SAMPLE` images is decoded with the data module's decoder; 50 000 images
   cost 50 000 header reads and 200 decodes.
2. :func:`detect_machine` counts usable CPU cores and the GPUs torch sees (and their memory).
3. :func:`suggest` turns those facts into a search space (a plain mapping that
   :func:`vaetune.spec.space_from_dict` accepts) with a comment per choice saying which fact it
   follows from; :func:`render` writes it as commented YAML.

The rules are deliberately simple and stated where they are applied; every constant below says
where it comes from. Nothing here prints.
"""

from __future__ import annotations

from vaetune.init_space._choices import Suggestion, suggest
from vaetune.init_space._facts import (
    AlphaFacts,
    Machine,
    SourceFacts,
    Spread,
    detect_machine,
    inspect_source,
)
from vaetune.init_space._render import render

__all__ = ["AlphaFacts", "Machine", "SourceFacts", "Spread", "Suggestion", "detect_machine", "inspect_source",
           "render", "suggest"]
