"""lamindb for the benchmarks: its own virtual environment, and a throw-away offline instance.

lamindb is never imported by the benchmark process itself. It lives in a venv under the lineage
home (`$LINEAGE_HOME/bench/lamindb-venv`, default `~/.lineage/bench/lamindb-venv`), created and
`pip install`ed on first use and reused while it still imports. Each run gets a fresh SQLite
instance made by `lamin init --storage DIR` (or, given a `postgresql://` URL of an empty local
database, a Postgres one: `lamin init --storage DIR --db URL`), with every lamin settings and
cache path pointed into a temporary directory, so the user's `~/.lamin` and current instance are
never touched.

Benchmarks that need torch in the venv (`mapped.py`) call `share_torch`: a `.pth` file appends
the main environment's site-packages, so the venv imports the project's torch, never a second copy.

Only the standard library is imported here: `registry.py` runs its lamindb half with the venv's
interpreter, which has neither `graph` nor `lineage`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SPEC = "lamindb>=2,<3"
# What the venv needs besides lamindb (module -> pip requirement): lamindb talks to a Postgres
# database through psycopg2 (`lamin init --db postgresql://...`). lamindb_setup 1.27 requires
# psycopg2-binary itself; it is installed here when a venv (another lamindb, an older venv) lacks
# it, without touching the rest of the venv.
EXTRA_PACKAGES = {"psycopg2": "psycopg2-binary"}

# Environment variables that would point lamindb at a real instance, user or hub.
_LAMIN_VARS = (
    "LAMIN_API_KEY",
    "LAMIN_CURRENT_INSTANCE",
    "LAMIN_ENV",
    "LAMIN_API_URL",
    "LAMINDB_DJANGO_DATABASE_URL",
    "LAMINDB_MODULES",
    "LAMINDB_SYNC_GIT_REPO",
)


@dataclass(frozen=True)
class LamindbEnv:
    python: Path
    lamin: Path  # the `lamin` CLI
    version: str  # lamindb.__version__
    spec: str  # the requirement that was installed
    reused: bool  # the venv was there and working
    setup_s: float  # time spent creating/installing (0 when reused)


def default_venv_dir() -> Path:
    """`$LINEAGE_HOME/bench/lamindb-venv` (`~/.lineage/...`); read before LINEAGE_HOME is changed."""
    home = os.environ.get("LINEAGE_HOME")
    root = Path(home).expanduser() if home else Path.home() / ".lineage"
    return root / "bench" / "lamindb-venv"


def _bin(venv_dir: Path, name: str) -> Path:
    return venv_dir / ("Scripts" if os.name == "nt" else "bin") / name


def installed_version(python: Path) -> str | None:
    """lamindb's version in that interpreter, or None when it does not import."""
    if not python.exists():
        return None
    probe = "import lamindb_setup, lamindb, sys; sys.stdout.write(lamindb.__version__)"
    # Import in a throw-away settings dir: importing lamindb may write lamin settings.
    with tempfile.TemporaryDirectory(prefix="lamindb-probe-") as tmp:
        proc = subprocess.run(
            [str(python), "-c", probe],
            capture_output=True,
            text=True,
            env=isolated_env(Path(tmp)),
            cwd=tmp,
            timeout=300,
        )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else None


def missing_packages(python: Path, packages: dict[str, str] = EXTRA_PACKAGES) -> list[str]:
    """The pip requirements of `packages` (module -> requirement) whose module that interpreter
    cannot import."""
    probe = (
        "import importlib.util, sys; "
        "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    )
    proc = subprocess.run(
        [str(python), "-c", probe, *packages],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cannot query {python}: {proc.stderr.strip()[-2000:]}")
    missing = proc.stdout.split()
    return [packages[m] for m in packages if m in missing]


def _install_missing(python: Path, log) -> float:
    """pip install what `missing_packages` names into the venv; returns the seconds it took."""
    missing = missing_packages(python)
    if not missing:
        return 0.0
    t0 = time.perf_counter()
    log(f"[lamindb] installing {', '.join(missing)} into the lamindb venv")
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *missing],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or missing_packages(python):
        raise RuntimeError(
            f"pip install {' '.join(missing)} failed:\n{(proc.stdout + proc.stderr).strip()[-4000:]}"
        )
    return time.perf_counter() - t0


def _matches(version: str, spec: str) -> bool:
    """Enough of PEP 440 for our default spec: `lamindb>=2,<3` means major version 2."""
    if spec == DEFAULT_SPEC:
        return version.split(".")[0] == "2"
    return True  # a custom spec: trust the venv the user pointed us at


def ensure_lamindb(venv_dir: Path | None = None, spec: str = DEFAULT_SPEC, log=None) -> LamindbEnv:
    """The venv with lamindb in it, created and installed if missing or broken.

    Tries `spec` first; if pip cannot satisfy it (no lamindb 2.x for this Python, say), installs
    the newest lamindb instead and says so; the caller prints the version it got. A working venv
    that lacks one of `EXTRA_PACKAGES` is kept, and only that package is installed into it.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    venv_dir = Path(venv_dir) if venv_dir else default_venv_dir()
    python, lamin = _bin(venv_dir, "python"), _bin(venv_dir, "lamin")

    version = installed_version(python)
    if version and lamin.exists() and _matches(version, spec):
        setup_s = _install_missing(python, log)
        return LamindbEnv(python, lamin, version, spec, reused=True, setup_s=setup_s)

    t0 = time.perf_counter()
    log(f"[lamindb] creating venv {venv_dir} and installing {spec!r} (once; about a minute)")
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(clear=True, with_pip=True).create(venv_dir)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    used = spec
    proc = subprocess.run([*pip, spec], capture_output=True, text=True)
    if proc.returncode != 0:
        log(f"[lamindb] pip could not install {spec!r}:\n{proc.stderr.strip()[-2000:]}")
        used = "lamindb"
        log("[lamindb] falling back to the newest lamindb pip can install")
        proc = subprocess.run([*pip, used], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pip install lamindb failed:\n{proc.stderr.strip()[-4000:]}")
    version = installed_version(python)
    if not version:
        raise RuntimeError(f"lamindb installed in {venv_dir} but does not import")
    if not lamin.exists():
        raise RuntimeError(
            f"lamindb installed in {venv_dir} but there is no `lamin` CLI at {lamin}"
        )
    _install_missing(python, log)
    return LamindbEnv(python, lamin, version, used, reused=False, setup_s=time.perf_counter() - t0)


SHARED_TORCH_PTH = "lineage-shared-torch.pth"


def share_torch(lenv: LamindbEnv, torch_parent: Path) -> Path:
    """Let the lamindb venv import the project's torch instead of installing a second copy.

    `torch_parent` is the directory that holds the main interpreter's `torch` package
    (`Path(torch.__file__).parent.parent`, its site-packages). We write one line with it into
    `<venv site-packages>/lineage-shared-torch.pth`; Python's `site` module *appends* `.pth` lines
    to sys.path after the venv's own site-packages, so every package the venv has (numpy, scipy,
    h5py, anndata, pandas, ...) still wins, and only what it lacks (torch and torch's own
    dependencies) comes from the main environment. A multi-GB CUDA wheel is not downloaded twice,
    and both sides of a benchmark run the very same torch build.

    torch has compiled extensions: this only works when both interpreters are the same Python
    (major.minor), so that is checked. Rewritten on every call (idempotent); returns the `.pth`.
    """
    torch_parent = Path(torch_parent).resolve()
    if not (torch_parent / "torch" / "__init__.py").exists():
        raise RuntimeError(f"no torch package under {torch_parent}")
    probe = (
        "import sys, sysconfig; print(f'{sys.version_info[0]}.{sys.version_info[1]}'); "
        "print(sysconfig.get_paths()['purelib'])"
    )
    proc = subprocess.run(
        [str(lenv.python), "-c", probe], check=False, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cannot query {lenv.python}: {proc.stderr.strip()[-2000:]}")
    venv_version, site_packages = proc.stdout.strip().splitlines()[-2:]
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if venv_version != ours:
        raise RuntimeError(
            f"the lamindb venv runs Python {venv_version}, torch was built for {ours}: cannot share it"
        )
    pth = Path(site_packages) / SHARED_TORCH_PTH
    pth.write_text(
        "# Written by lineage's benchmarks/_lamindb_env.py (share_torch): the main environment's torch.\n"
        f"{torch_parent}\n"
    )
    return pth


def isolated_env(root: Path) -> dict[str, str]:
    """os.environ with lamin's settings, cache and HOME inside `root`, and no lamin credentials.

    lamindb_setup reads `LAMIN_SETTINGS_DIR` (settings in `$LAMIN_SETTINGS_DIR/.lamin`) and
    `LAMIN_CACHE_DIR`; HOME and the XDG dirs cover platformdirs and anything else that looks
    there. The current instance is also found through `<cwd>/.lamin/current_instance`, so run
    lamin with `cwd=root`.
    """
    root = Path(root)
    env = {k: v for k, v in os.environ.items() if k not in _LAMIN_VARS}
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(key, None)
    env.update(
        HOME=str(root / "home"),
        LAMIN_SETTINGS_DIR=str(root / "home"),
        LAMIN_CACHE_DIR=str(root / "cache"),
        XDG_CACHE_HOME=str(root / "xdg-cache"),
        XDG_CONFIG_HOME=str(root / "xdg-config"),
        XDG_DATA_HOME=str(root / "xdg-data"),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    for key in ("HOME", "LAMIN_CACHE_DIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def init_instance(lenv: LamindbEnv, root: Path, storage: Path, db: str | None = None) -> float:
    """`lamin init --storage storage`, isolated in `root`; returns the seconds it took.

    With `db` (a `postgresql://` URL of an existing, empty database) the instance keeps its
    records there instead of in `storage/.lamindb/lamin.db`. lamindb_setup contacts LaminHub only
    for a remote instance: local storage with a database on `@localhost`, `@127.0.0.1` or
    `@0.0.0.0` (its `is_local_db_url`) is set up offline, as the SQLite one is.
    """
    storage.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(lenv.lamin), "init", "--storage", str(storage), *(["--db", db] if db else [])],
        capture_output=True,
        text=True,
        env=isolated_env(root),
        cwd=root,
        timeout=600,
    )
    seconds = time.perf_counter() - t0
    # The SQLite file, or for a Postgres instance the storage's marker file (which a failed init
    # removes again), is there after a successful init.
    made = storage / ".lamindb" / ("storage_uid.txt" if db else "lamin.db")
    if proc.returncode != 0 or not made.exists():
        raise RuntimeError(
            f"`lamin init --storage {storage}{' --db ...' if db else ''}` failed "
            f"(rc {proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr).strip()[-4000:]}"
        )
    return seconds


def run_worker(lenv: LamindbEnv, root: Path, argv: list[str], timeout: float | None = None) -> dict:
    """Run `python *argv` in the venv inside the isolated instance; parse its last stdout line.

    The worker's stderr (progress) goes straight to ours; its stdout is captured because lamindb
    logs there, and the last line must be a JSON object.
    """
    proc = subprocess.run(
        [str(lenv.python), *argv],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        env=isolated_env(root),
        cwd=root,
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(lines[-40:])
        raise RuntimeError(f"lamindb worker failed (rc {proc.returncode}); stdout tail:\n{tail}")
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"lamindb worker's last line is not JSON: {lines[-1][:500]!r}") from exc
    if not isinstance(result, dict):
        raise RuntimeError(f"lamindb worker's last line is not a JSON object: {lines[-1][:500]!r}")
    return result
