"""The core install (no ``models`` extra): the light commands never import torch, the model commands
say in one line which extra to install, the wheel carries the package data, and (CI only, about
3 minutes) a fresh venv with ``pip install .`` runs ``validate`` without torch.

The fresh-venv test installs the core dependencies from the package index; it runs where
``CIRCUITSPEC_INSTALL_TESTS=1`` (``.ci/run`` sets it for one run of this file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "hypotheses" / "toy_sentiment.yaml"
BASELINE = ROOT / "reports" / "toy_sentiment" / "baseline.json"
HEAVY = ("torch", "transformer_lens", "transformers", "einops", "gguf", "sae_lens")
HINT = "needs the models extra (torch is not installed): pip install 'circuitspec[models]'"

# Run the CLI in-process, then print which heavy modules the command imported.
_TRACE = (
    "import sys\n"
    "from circuitspec.cli.main import app\n"
    "try:\n"
    "    app(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), 'EXIT', code)\n"
)

# A sitecustomize that makes torch (and what needs it) unimportable, as on a core install.
_BLOCKER = """
import sys

class _NoModelExtra:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformer_lens", "transformers"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoModelExtra())
"""


@pytest.mark.parametrize(
    "args",
    [
        ["validate", str(TOY)],
        ["graph", str(TOY)],
        ["graph", str(TOY), "--format", "mermaid"],
        ["schema"],
        ["diff", str(BASELINE), str(BASELINE)],
    ],
    ids=["validate", "graph-dot", "graph-mermaid", "schema", "diff"],
)
def test_light_commands_import_no_torch(args, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", _TRACE, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    last = out.stdout.strip().splitlines()[-1]
    assert last == "HEAVY [] EXIT 0", (last, out.stderr[-2000:])


def _blocked_env(tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(_BLOCKER, encoding="utf-8")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)])}


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "circuitspec.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ["verify", str(TOY), "-o", "out"],
        ["regress", str(TOY), "-o", "out"],
        ["baseline", str(TOY), "-o", "base.json"],
        ["prompts", str(TOY)],
    ],
    ids=["verify", "regress", "baseline", "prompts"],
)
def test_model_commands_without_torch_name_the_extra(args, tmp_path):
    env = _blocked_env(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode == 1 and "No module named 'torch'" in probe.stderr  # the blocker works
    out = _cli(args, env, tmp_path)
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"circuitspec {args[0]} {HINT}"), out.stderr
    assert "torch==2.13.0" in errors[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "base.json").exists()


def test_light_commands_work_with_torch_blocked(tmp_path):
    env = _blocked_env(tmp_path)
    out = _cli(["validate", str(TOY)], env, tmp_path)
    assert out.returncode == 0 and out.stdout.startswith(f"ok: {TOY}"), out.stderr
    help_text = _cli(["verify", "--help"], env, tmp_path)
    assert help_text.returncode == 0 and "Run every claim" in help_text.stdout


def _source_copy(dest: Path) -> Path:
    """The files a build reads, copied (a build writes build/ and *.egg-info into its source)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "circuitspec", dest / "circuitspec", ignore=ignore)
    return dest


def test_wheel_carries_the_package_data(tmp_path):
    source = _source_copy(tmp_path / "src")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    out = subprocess.run(
        [*command, "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("circuitspec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = sorted(
        path.relative_to(source).as_posix()
        for path in (source / "circuitspec").rglob("*")
        if path.is_file() and path.suffix != ".py"
    )
    assert any(name.endswith(".html.j2") for name in data)  # the report templates
    assert any(name.endswith(".safetensors") for name in data)  # the bundled toy model
    assert [name for name in data if name not in names] == []
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    requires = [
        line.split(":", 1)[1].strip()
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    core = [req for req in requires if "extra ==" not in req]
    assert core and not [
        req
        for req in core
        if req.split(">")[0].split("=")[0].strip()
        in {"torch", "transformer-lens", "transformers", "einops", "gguf"}
    ]
    assert any(req.startswith("torch") and 'extra == "models"' in req for req in requires)


@pytest.mark.skipif(
    os.environ.get("CIRCUITSPEC_INSTALL_TESTS") != "1",
    reason="installs the core into a fresh venv from the index (~3 min): CI sets CIRCUITSPEC_INSTALL_TESTS=1",
)
def test_fresh_core_install_validates_without_torch(tmp_path):
    source = _source_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    print(f"core install: {time.perf_counter() - started:.0f} s")
    cli = str(venv / "bin" / "circuitspec")
    ok = subprocess.run([cli, "validate", str(TOY)], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith(f"ok: {TOY}"), ok.stderr
    torch = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True
    )
    assert torch.returncode == 1 and "No module named 'torch'" in torch.stderr
    verify = subprocess.run([cli, "verify", str(TOY)], capture_output=True, text=True, cwd=tmp_path)
    assert verify.returncode == 2 and verify.stdout == ""
    assert verify.stderr.startswith(f"circuitspec verify {HINT}") and verify.stderr.count("\n") == 1
