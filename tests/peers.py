"""Real OpenLineage producers and clients, each in its own virtual environment under
`<lineage home>/bench/<name>-venv` (default `~/.lineage/bench/`), made and `pip install`ed on
first use and reused while its packages import, as `benchmarks/_lamindb_env.py` does for lamindb.
They never share the test process's interpreter: a test runs them as child processes, and
`run_python` gives a child the project (PYTHONPATH) when it needs `lineage` too.

A server the children talk to runs in the test process (`serve`: our OpenLineage router on a
bare FastAPI app, under uvicorn on a free port of 127.0.0.1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from lineage.openlineage_api import router
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
# Read at import, before the test session points LINEAGE_HOME at a temporary directory.
BENCH = Path(os.environ.get("LINEAGE_HOME") or Path.home() / ".lineage").expanduser() / "bench"

# name -> (requirements, a module that must import). dbt-core 1.12 needs
# dbt-core-experimental-parser, whose sdist downloads a prebuilt wheel from GitHub while it is
# built, which a machine that reaches only the package registries cannot do: 1.11 is the newest
# dbt-core that installs from PyPI alone.
PEERS = {
    "openlineage": (["openlineage-python==1.54.0"], "openlineage.client"),
    # marquez-python 0.50.0 imports pytz without declaring it (pyrfc3339 no longer brings it).
    "marquez": (["marquez-python==0.50.0", "pytz"], "marquez_client"),
    "dbt": (
        ["dbt-core>=1.11,<1.12", "dbt-duckdb==1.11.1", "openlineage-dbt==1.54.0"],
        "openlineage.common.provider.dbt",
    ),
}


def python_of(name: str) -> Path:
    """The interpreter of peer `name`'s venv, made and installed if it is missing or broken."""
    requirements, module = PEERS[name]
    home = BENCH / f"{name}-venv"
    python = home / "bin" / "python"
    if python.exists() and _imports(python, module):
        return python
    home.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(clear=True, with_pip=True).create(home)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *requirements],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if done.returncode != 0 or not _imports(python, module):
        raise RuntimeError(f"could not install {requirements} into {home}:\n{done.stderr[-4000:]}")
    return python


def _imports(python: Path, module: str) -> bool:
    probe = subprocess.run(
        [str(python), "-c", f"import {module}"], capture_output=True, timeout=300
    )
    return probe.returncode == 0


def site_packages(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def run_python(
    python: Path | str, script: str, env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `script` with `python`, in `cwd`; the output is kept for the test to read."""
    path = cwd / "peer_script.py"
    path.write_text(script)
    return subprocess.run(
        [str(python), str(path)], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=timeout,
    )  # fmt: skip


def with_lineage(script: str, peer_python: Path) -> str:
    """A script for the project's own interpreter that can also import peer's packages: the
    peer's site-packages are appended to `sys.path`, so the project's packages win."""
    return (
        f"import sys\nsys.path.append({site_packages(peer_python)!r})\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n{script}"
    )


@contextmanager
def serve() -> Iterator[str]:
    """Our OpenLineage router on a bare FastAPI app, served by uvicorn in a thread; yields its
    base URL. Requests reach the test process's current instance."""
    app = FastAPI()
    app.include_router(router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def child_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("OPENLINEAGE")}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


PYTHON = sys.executable  # the project's interpreter
