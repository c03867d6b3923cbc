"""The real image collections the quality benchmarks run on: each one a package that a registry
ships, fetched once by vaetune's own fetch code (which checks the package's integrity) into
`~/.cache/vaetune/benchmarks/<name>` (or a folder given), and searched with a shipped space.

    emoji_twitter  Twemoji, npm emoji-datasource-twitter 16.0.0: 3 786 flat 64 px RGBA pictograms
    emoji_google   Noto Emoji, npm emoji-datasource-google 16.0.0: 3 786, outlined, gradients
    emoji_apple    Apple's emoji, npm emoji-datasource-apple 16.0.0: 3 783, shaded, photographic
    pokesprite     Pokémon box sprites, npm pokesprite-images 2.7.0: 2 705 pixel-art sprites, regular and shiny

Every collection is read at 32 px on white (the sprites cropped to their centre square, as their
space says), split 80/10/10 by vaetune's data module; the test split
is what the benchmarks' one evaluator judges on, and no method trains or ranks on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT


@dataclass(frozen=True)
class RealCollection:
    name: str
    space: Path  # the shipped space that searches it
    fetch: str  # vaetune.fetch's function
    options: dict = field(default_factory=dict)  # its arguments besides the folder

    def folder(self, root: Path | None = None) -> Path:
        """The collection's images, fetched into `root`/<name> unless they are there already."""
        from vaetune.fileio import cache_root

        folder = (root or cache_root() / "benchmarks") / self.name
        if not (folder.is_dir() and any(folder.rglob("*.png"))):
            import importlib

            module, _, function = self.fetch.rpartition(".")
            getattr(importlib.import_module(module), function)(folder, **self.options)
        return folder

    def sets(self, root: Path | None = None) -> list[str]:
        """The --set items that point its space at the collection."""
        return [f"data.source={self.folder(root)}"]


EMOJI_SPACE = ROOT / "search_spaces" / "emoji.yaml"
COLLECTIONS = {
    c.name: c for c in (
        RealCollection("emoji_twitter", EMOJI_SPACE, "vaetune.fetch.emoji.fetch_emoji", {"emoji_set": "twitter"}),
        RealCollection("emoji_google", EMOJI_SPACE, "vaetune.fetch.emoji.fetch_emoji", {"emoji_set": "google"}),
        RealCollection("emoji_apple", EMOJI_SPACE, "vaetune.fetch.emoji.fetch_emoji", {"emoji_set": "apple"}),
        RealCollection("pokesprite", ROOT / "search_spaces" / "pokesprite.yaml",
                       "vaetune.fetch.pokesprite.fetch_pokesprite"),
    )
}
