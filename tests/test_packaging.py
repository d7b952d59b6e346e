"""Installed, policywatch is one name: a wheel puts only `policywatch/` into site-packages (the repository's
crawler/, monitor/, storage/ and reports/ folders install as policywatch.crawler, …), and its commands work
from a folder that holds folders of those names (a user's `reports/` after the first night, say)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

DECOYS = ("reports", "storage", "monitor", "crawler")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Every folder of data files is declared: setuptools warns of data in a folder it was not told about
    assert "absent from the `packages` configuration" not in done.stderr, done.stderr[-3000:]
    (found,) = out.glob("policywatch-*.whl")
    return found


def test_the_wheel_holds_one_top_level_name_and_every_module(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"policywatch"}
    modules = {
        f"policywatch/{p.relative_to(ROOT).as_posix()}"
        for folder in DECOYS
        for p in (ROOT / folder).rglob("*.py")
    }
    assert modules - set(names) == set()  # a package missing from pyproject's list would be left out
    data = {
        f"policywatch/{p.relative_to(ROOT).as_posix()}"
        for folder in ("monitor/demo_site", "reports/templates")
        for p in (ROOT / folder).rglob("*")
        if p.is_file()
    }
    assert data - set(names) == set()  # the demo's site and every template
    for needed in (
        "policywatch/monitor/starter.toml",
        "policywatch/reports/templates/digest.html.j2",
        "policywatch/storage/migrations/versions/0001_initial.py",
        "policywatch/crawler/settings.py",
        "policywatch/storage/datasette-metadata.json",
    ):
        assert needed in names


def test_installed_in_a_fresh_venv_it_runs_from_a_folder_of_decoys(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    before = set(os.listdir(site))
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    added = set(os.listdir(site)) - before
    assert {n for n in added if not n.endswith(".dist-info")} == {"policywatch"}, added
    # The dependencies come from the test environment's site-packages: a path entry, whose own .pth files
    # (this checkout's editable install) are not run, so `policywatch` can only be the wheel's.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")

    work = tmp_path / "user"
    work.mkdir()
    for name in DECOYS:  # a package of each name, which fails loudly if anything imports it
        (work / name).mkdir()
        (work / name / "__init__.py").write_text(
            f"raise ImportError('the decoy {name} folder was imported')\n"
        )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SCRAPY_SETTINGS_MODULE")}
    where = subprocess.run(
        [str(python), "-c", "import policywatch.storage as s; print(s.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert where.returncode == 0 and where.stdout.startswith(str(site)), where.stdout + where.stderr
    demo = subprocess.run(
        [str(venv / "bin" / "policywatch"), "demo", "--out", "out"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert (work / "out" / "reports" / "site" / "index.html").exists()
    site_again = subprocess.run(
        [str(python), "-m", "policywatch.monitor", "site", "--config", "out/policywatch.toml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert site_again.returncode == 0, site_again.stderr
