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
) -> None:
    """Write a commented starter config whose watchlist holds real IRCC / Tech Talent Strategy URLs."""
    from importlib.resources import files

    if path.exists() and not force:
        fail(f"{path} exists; use --force to overwrite it", EXIT_USAGE)
    text = files("policywatch.monitor").joinpath("starter.toml").read_text(encoding="utf-8")
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
