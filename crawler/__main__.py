"""The crawl process's entry point: `python -P -m crawler crawl watchlist …`, Scrapy's own command line.

Why not `python -m scrapy`: Scrapy's item adapter (itemadapter) imports pydantic when it is installed, to recognise
pydantic items; pydantic is installed here (typer needs it) and costs the crawl process ≈ 7 MB for the whole night,
while no policywatch item is a pydantic model. Marking it absent before Scrapy starts makes itemadapter skip it,
exactly as on a machine without pydantic. `scrapy crawl watchlist` by hand still works, with pydantic loaded.
"""
from __future__ import annotations

import sys


def main() -> None:
    sys.modules.setdefault("pydantic", None)  # type: ignore[arg-type]  # "not installed", for itemadapter
    from scrapy.cmdline import execute

    execute(["scrapy", *sys.argv[1:]])


if __name__ == "__main__":
    main()
