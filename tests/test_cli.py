"""The `dreamscope` entry point: only the chosen command's module is imported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

# Runs the CLI in a fresh interpreter, then reports which heavy modules the process imported.
PROBE = """
import sys
from dreamscope.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
import json
print(json.dumps({"code": code, "loaded": sorted(m for m in ("torch", "dreamscope.train", "dreamscope.sweep",
                  "dreamscope.diagnostics.probe") if m in sys.modules)}), file=sys.stderr)
"""


def _run_cli(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, timeout=120)
    return json.loads(out.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [("--help",), ("entropy", "13.67", "--action-dim", "4", "--json"),
                                  ("entropy", "--help")])
def test_cli_imports_only_the_chosen_command(argv):
    result = _run_cli(*argv)
    assert result["code"] == 0
    assert result["loaded"] == []


def test_cli_still_builds_the_chosen_command_and_rejects_unknown_ones():
    assert _run_cli("train", "--help") == {"code": 0, "loaded": ["dreamscope.train"]}
    assert _run_cli("no-such-command")["code"] == 2


@pytest.mark.parametrize("command", ["train", "diagnose", "probe", "model-fit", "evaluate", "sweep", "entropy", "demo"])
def test_help_texts_speak_to_a_user_who_never_saw_our_seed_question(command, capsys):
    """Users read --help and the bundled configs; "the seed's set-up" means nothing to them."""
    from dreamscope.cli import COMMANDS, main
    from dreamscope.config import BUNDLED_CONFIGS

    assert command in COMMANDS
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    texts = [capsys.readouterr().out] + [path.read_text() for path in sorted(BUNDLED_CONFIGS.glob("*.yaml"))]
    assert [phrase for text in texts for phrase in ("seed's", "seed report", "seed config") if phrase in text.lower()] == []


def test_cli_makes_openmp_threads_sleep_unless_the_user_chose(monkeypatch):
    """A spinning OpenMP wait stalls a 2-thread run next to any other job (docs/benchmarks_speed.md)."""
    import importlib
    import os

    import dreamscope.cli

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    importlib.reload(dreamscope.cli)
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    importlib.reload(dreamscope.cli)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_plain_diagnosis_starts_without_torch(tmp_path):
    """Reading a log and judging it needs numbers, not torch (1-2 s of start-up)."""
    log = tmp_path / "metrics.csv"
    log.write_text("step,policy/entropy\n" + "".join(f"{i},{1 + i / 100}\n" for i in range(60)))
    result = _run_cli("diagnose", str(log), "--action-dim", "2", "--json")
    assert result == {"code": 0, "loaded": []}
