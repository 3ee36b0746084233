"""The README demo runs end to end against the session's Neo4j."""

from __future__ import annotations

import subprocess
import sys

import lineage as ln
from tests.conftest import Neo4jUnderTest


def test_demo_runs_end_to_end(db: ln.Instance, neo4j: Neo4jUnderTest) -> None:
    ln.disconnect()
    out = subprocess.run(
        [sys.executable, "-m", "lineage", "demo"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert f"connected to {neo4j.settings.display_uri}" in out.stdout
    assert "uniqueness constraints" in out.stdout
    assert "$a + $b = 42" in out.stdout
