"""Getting started: `init` (a starter config) and `demo` (the offline demo)."""

from __future__ import annotations

from pathlib import Path

import typer

from policywatch.monitor.cli.common import EXIT_USAGE, app, err, fail, out
from policywatch.monitor.config import load_config


@app.command()
def init(
    path: Path = typer.Argument(Path("policywatch.toml"), help="Where to write the starter config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    pack: list[str] = typer.Option(
        [],
        "--pack",
        metavar="NAME",
        help="A source pack to include (repeatable; --list-packs names them). Without one: the Tech Talent "
        "Strategy starter.",
    ),
    list_packs: bool = typer.Option(False, "--list-packs", help="List the source packs and exit."),
) -> None:
    """Write a commented starter config whose watchlist holds real IRCC / Tech Talent Strategy URLs, or the
    merged watchlists of source packs (IRCC, provincial nominee programs, the Canada Gazette …)."""
    from importlib.resources import files

    from policywatch.monitor.config.packs import available, merge

    if list_packs:
        for p in available().values():
            out.print(
                f"{p.name:8} {len(p.watches):3} pages, {len(p.feeds)} feeds — {p.summary}", markup=False
            )
        return
    starter = files("policywatch.monitor").joinpath("starter.toml").read_text(encoding="utf-8")
    text = starter
    if pack:
        known = available()
        unknown = [n for n in pack if n not in known]
        if unknown:
            fail(f"--pack {unknown[0]!r}: no such pack (known: {', '.join(known)})", EXIT_USAGE)
        text = merge([known[n] for n in dict.fromkeys(pack)], starter)
    if path.exists() and not force:
        fail(f"{path} exists; use --force to overwrite it", EXIT_USAGE)
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)  # the starter must always be valid
    out.print(f"wrote {path} ({len(cfg.watches)} watched URLs). Next: policywatch run --config {path}")


@app.command()
def demo(
    out_dir: Path = typer.Option(
        Path("demo-out"), "--out", help="Folder for the demo's database, config and reports."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Ignored: the demo writes its own config under --out."
    ),
) -> None:
    """Offline demo: serve bundled sample nights of a canada.ca-like site on loopback and run a pass per
    night."""
    from policywatch.monitor.demo import run_demo

    run_demo(out_dir, out, err)
