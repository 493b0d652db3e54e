"""The set-up machinery: scripts/setup and scripts/pgcluster, without touching the system.

These run the real scripts with fake apt-get/sudo in front of PATH, so nothing is
installed and no database is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from geogrid.settings import private_cluster_url

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [ROOT / "scripts" / "setup", ROOT / "scripts" / "pgcluster", ROOT / ".ci" / "run"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_bash(script: Path) -> None:
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_url_matches_settings(tmp_path: Path) -> None:
    env = {**os.environ, "GEOGRID_HOME": str(tmp_path)}
    out = subprocess.run(
        [ROOT / "scripts" / "pgcluster", "url"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == private_cluster_url(tmp_path)
    assert not (tmp_path / ".geogrid").exists()  # url only prints


def test_pgcluster_rejects_unknown_command() -> None:
    result = subprocess.run(
        [ROOT / "scripts" / "pgcluster", "restart"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "usage" in result.stderr


def _fake_bin(tmp_path: Path, keep: list[str]) -> Path:
    """A PATH folder with only `keep` from the real PATH, plus apt-get and sudo fakes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in keep:
        real = shutil.which(name)
        if real:
            (bin_dir / name).symlink_to(real)
    log = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(f'#!/bin/bash\necho "apt-get $*" >> {log}\nexit 1\n')
    (bin_dir / "sudo").write_text('#!/bin/bash\n[[ $1 == -n ]] && shift\nexec "$@"\n')
    for fake in ("apt-get", "sudo"):
        (bin_dir / fake).chmod(0o755)
    return bin_dir


def test_setup_asks_apt_only_for_what_is_missing(tmp_path: Path) -> None:
    # No npm and no chromium on PATH; an external database, so no PostgreSQL needed.
    tools = [
        "bash",
        "env",
        "python3",
        "sha256sum",
        "cut",
        "cat",
        "sed",
        "find",
        "sort",
        "tail",
        "dirname",
        "head",
    ]
    bin_dir = _fake_bin(tmp_path, tools)
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "GEOGRID_DATABASE_URL": "postgresql://nobody@/nowhere",
    }
    result = subprocess.run(
        [ROOT / "scripts" / "setup", "--browser"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert "apt-get update failed" in result.stderr
    assert "nodejs npm chromium" in result.stdout
    assert "postgresql" not in result.stdout
    assert (tmp_path / "apt.log").read_text().split("\n")[0].endswith("update")
