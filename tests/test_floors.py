"""pyproject.toml's dependency floors and ceilings, and tests/floors.txt that CI installs."""

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {r.name: r for r in map(Requirement, project["dependencies"])}


def pinned() -> dict[str, Requirement]:
    lines = (ROOT / "tests" / "floors.txt").read_text().splitlines()
    return {r.name: r for r in (Requirement(x) for x in lines if x and not x.startswith("#"))}


def test_every_dependency_has_a_floor_and_a_ceiling():
    for name, requirement in declared().items():
        operators = sorted(spec.operator for spec in requirement.specifier)
        assert operators == ["<", ">="], f"{name}: {requirement.specifier}"


def test_floors_txt_pins_the_declared_floors():
    floors = pinned()
    assert floors.keys() == declared().keys()
    for name, requirement in declared().items():
        (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
        (pin,) = list(floors[name].specifier)
        assert (pin.operator, Version(pin.version)) == ("==", Version(floor)), name
        assert str(floors[name].marker) == str(requirement.marker), name


def test_the_smoke_test_passes_here():
    """(CI runs it again with the floors installed, see .ci/run.)"""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "floors_smoke.py")],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke test passed" in done.stdout
