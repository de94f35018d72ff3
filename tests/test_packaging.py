"""The package as pip installs it: every package listed, the overlay and the sample character inside a wheel."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _listed_packages() -> list[str]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]


def test_every_package_folder_is_listed_in_pyproject():
    found = {".".join(p.parent.relative_to(REPO_ROOT).parts)
             for root in ("aituber", "training") for p in (REPO_ROOT / root).rglob("__init__.py")}
    listed = set(_listed_packages())
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert {p for p in listed - found if not p.startswith("aituber.assets.")} == set()


@pytest.mark.slow
def test_a_built_wheel_finds_the_overlay_and_the_sample_character(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO_ROOT),
                    "-w", str(wheels)], check=True, capture_output=True, timeout=300)
    [wheel] = wheels.glob("aituber-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = (
        "import aituber, aituber.paths as p\n"
        "from aituber.config import load_character\n"
        "from aituber.outputs.overlay import OverlayServer\n"
        "print(aituber.__file__)\n"
        "print(p.overlay_dir())\n"
        "print(OverlayServer().static_dir)\n"
        "print(load_character(p.sample_character_dir()).path)\n"
        "print(p.sample_chat().is_file(), (p.overlay_dir() / 'index.html').is_file())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(Path(line).is_relative_to(target) for line in lines[:4]), lines
    assert lines[4] == "True True"
