"""The peer loaders of `mapped.py` (scDataset, annbatch), each in a virtual environment of its own.

Like lamindb (`_lamindb_env.py`), a peer is never imported by the benchmark process: it is
`pip install`ed into `$LINEAGE_HOME/bench/<name>-venv` (default `~/.lineage/bench/...`) on first use
and reused while it still imports, and the benchmark runs its worker with that venv's interpreter.

- scDataset (PyPI `scdataset`) runs on this Python: its venv shares the main environment through
  a `.pth` file (`_lamindb_env.share_torch`), written before `pip install`, so pip finds torch,
  numpy and anndata already there and installs scDataset alone.
- annbatch (PyPI `annbatch`) declares Python >= 3.12. It is first installed into a venv of this
  Python with `--ignore-requires-python --no-deps` (sharing the main environment as above) and
  imported; on 3.11 that import fails with a SyntaxError (its modules use PEP 695 `type`
  statements and generic classes), which is recorded. Then a Python >= 3.12 interpreter is looked
  for (`--annbatch-python`, `python3.12`/`python3.13` on PATH, pyenv's versions) and annbatch is
  installed there with its own dependencies, without torch (an optional extra of annbatch: its
  batches are numpy/scipy arrays). Without such an interpreter annbatch cannot run here and the
  benchmark says exactly why.

Only the standard library is imported here.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

from _lamindb_env import share_torch


@dataclass(frozen=True)
class PeerEnv:
    name: str
    python: Path
    version: str
    reused: bool
    setup_s: float
    shares_main: bool  # imports the main environment's packages (torch) through a .pth file
    notes: tuple[str, ...] = ()


def venv_dir(name: str) -> Path:
    home = os.environ.get("LINEAGE_HOME")
    root = Path(home).expanduser() if home else Path.home() / ".lineage"
    return root / "bench" / f"{name}-venv"


def _python(venv_path: Path) -> Path:
    return venv_path / ("Scripts" if os.name == "nt" else "bin") / "python"


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(key, None)
    return env


def probe(python: Path, module: str) -> tuple[str | None, str]:
    """(version, "") when `module` imports in that interpreter, else (None, the error's last line)."""
    if not python.exists():
        return None, f"{python} does not exist"
    code = f"import importlib.metadata as m, {module}, sys; sys.stdout.write(m.version({module!r}))"
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=_clean_env(), timeout=300
    )
    if proc.returncode == 0:
        return proc.stdout.strip().splitlines()[-1], ""
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    # The exception line, and for a SyntaxError the offending source line too.
    tail = " | ".join(line.strip() for line in lines[-4:]) if lines else f"rc {proc.returncode}"
    return None, tail


def _create(path: Path, python: Path | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if python is None:
        venv.EnvBuilder(clear=True, with_pip=True).create(path)
    else:
        subprocess.run(
            [str(python), "-m", "venv", "--clear", str(path)],
            check=True,
            capture_output=True,
            env=_clean_env(),
        )
    return _python(path)


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        env=_clean_env(),
    )


def _torch_parent() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        raise RuntimeError("torch is not installed in this interpreter: nothing to share")
    return Path(spec.origin).parent.parent


def ensure_shared(name: str, module: str, spec: str, extra_pip: tuple[str, ...] = (), log=None):
    """A venv of this Python that sees the main environment (torch, numpy, anndata) and has
    `spec` installed; reused while `module` imports."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    path = venv_dir(name)
    python = _python(path)
    version, _ = probe(python, module)
    if version:
        return PeerEnv(name, python, version, True, 0.0, True)
    t0 = time.perf_counter()
    log(f"[{name}] creating {path} and installing {spec!r} (once)")
    python = _create(path, None)
    share_torch(PeerEnv(name, python, "", False, 0.0, True), _torch_parent())  # type: ignore[arg-type]
    proc = _pip(python, *extra_pip, spec)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install {spec} failed:\n{proc.stderr.strip()[-3000:]}")
    version, why = probe(python, module)
    if not version:
        raise RuntimeError(f"{spec} installed in {path} but `import {module}` fails: {why}")
    return PeerEnv(name, python, version, False, time.perf_counter() - t0, True)


def newer_pythons(explicit: str | None = None) -> list[Path]:
    """Interpreters of Python >= 3.12 found here: `explicit`, PATH, pyenv's versions."""
    found: list[Path] = []
    if explicit:
        found.append(Path(explicit))
    for name in ("python3.13", "python3.12"):
        where = shutil.which(name)
        if where:
            found.append(Path(where))
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(glob.glob(str(pyenv / "versions" / "3.1[2-9]*" / "bin" / "python3"))):
        found.append(Path(candidate))
    usable = []
    for python in found:
        proc = subprocess.run(
            [str(python), "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
            env=_clean_env(),
        )
        if proc.returncode == 0 and proc.stdout.strip() == "True":
            usable.append(python)
    return usable


def ensure_annbatch(
    explicit_python: str | None = None, log=None
) -> tuple[PeerEnv | None, list[str]]:
    """annbatch's venv, and what was tried (each attempt's outcome, for the JSON and the docs)."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    tried: list[str] = []
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    # 1. This Python, ignoring the declared requirement.
    path = venv_dir("annbatch-py" + ours.replace(".", ""))
    python = _python(path)
    version, why = probe(python, "annbatch")
    if not version and "SyntaxError" not in why:
        log(f"[annbatch] trying it on Python {ours} with --ignore-requires-python in {path}")
        python = _create(path, None)
        share_torch(PeerEnv("annbatch", python, "", False, 0.0, True), _torch_parent())  # type: ignore[arg-type]
        proc = _pip(python, "--ignore-requires-python", "--no-deps", "annbatch")
        if proc.returncode != 0:
            why = f"pip: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
        else:
            version, why = probe(python, "annbatch")
    if version:
        tried.append(f"Python {ours} with --ignore-requires-python: imports (annbatch {version})")
        return PeerEnv("annbatch", python, version, True, 0.0, True), tried
    tried.append(f"Python {ours} with --ignore-requires-python --no-deps: import fails: {why}")
    # 2. A Python >= 3.12, with annbatch's own dependencies (no torch: an optional extra).
    path = venv_dir("annbatch")
    python = _python(path)
    version, why = probe(python, "annbatch")
    if version:
        tried.append(f"own venv {path} (Python >= 3.12): annbatch {version}")
        return PeerEnv("annbatch", python, version, True, 0.0, False, tuple(tried)), tried
    newer = newer_pythons(explicit_python)
    if not newer:
        tried.append("no Python >= 3.12 interpreter found (PATH, pyenv, --annbatch-python)")
        return None, tried
    t0 = time.perf_counter()
    log(f"[annbatch] creating {path} with {newer[0]} and installing annbatch (once)")
    python = _create(path, newer[0])
    proc = _pip(python, "annbatch")
    if proc.returncode != 0:
        tried.append(f"pip install annbatch with {newer[0]} failed: {proc.stderr.strip()[-500:]}")
        return None, tried
    version, why = probe(python, "annbatch")
    if not version:
        tried.append(f"annbatch installed with {newer[0]} but does not import: {why}")
        return None, tried
    tried.append(f"own venv {path} with {newer[0]}: annbatch {version}")
    return PeerEnv("annbatch", python, version, False, time.perf_counter() - t0, False), tried
