"""Regenerate store_layouts/layouts/*.json: `python -m store_layouts.generate`.

The JSON files are committed; edit the generator modules and rerun this, rather than
editing thousands of lines of JSON by hand. Each document is validated before writing.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store_layouts.catalog import LAYOUT_DIR
from store_layouts.generate import convenience, hypermarket, supermarket
from store_layouts.generate.builder import write_layout
from store_layouts.parse import parse_layout

logger = logging.getLogger(__name__)

GENERATORS: dict[str, Callable[[], dict[str, Any]]] = {
    "convenience": convenience.build,
    "supermarket": supermarket.build,
    "hypermarket": hypermarket.build,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=LAYOUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in GENERATORS.items():
        doc = build()
        layout = parse_layout(doc, source=name)  # never write a file that would not load
        path = args.out / f"{name}.json"
        write_layout(doc, path)
        logger.info("%s: %d nodes, %d edges, %d shelves -> %s", name, len(layout.nodes),
                    len(layout.edges), len(layout.shelves), path)


if __name__ == "__main__":
    main()
