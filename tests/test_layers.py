"""Layers import one way: core -> envs/agent -> training -> analysis -> report -> commands.

Every `dreamscope` import in src/ (at module level or inside a function) is checked against the
layer map below; an import of a higher layer fails the test. UPWARD lists the ones still to be
removed (issue: one-way layers); it may only shrink.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "dreamscope"

#: layer -> module prefixes (relative to dreamscope); the longest matching prefix decides.
LAYERS = {
    "core": ("errors", "config", "dists", "stats", "metrics", "run_files", "cli_args"),
    "envs": ("envs", "__init__"),  # importing the package registers its Gymnasium envs
    "agent": ("agent",),
    "training": ("replay", "rewards", "train", "resume", "checkpoint", "instrument", "diagnostics.signals"),
    "analysis": ("logs", "diagnostics", "evaluate", "fingerprint"),
    "report": ("report",),
    "commands": ("cli", "demo", "sweep", "diagnostics.doctor_cli"),
}
RANK = {"core": 0, "envs": 1, "agent": 1, "training": 2, "analysis": 3, "report": 4, "commands": 5}

#: (importing module, imported module) pairs that still go upward.
UPWARD = {
    ("diagnostics.model_fit", "report.html"),
    ("diagnostics.probe", "report.html"),
    ("diagnostics.probe", "report.style"),
    ("diagnostics.probe", "report.terminal"),
    ("evaluate", "report.html"),
}


def layer(module: str) -> str:
    matches = [(len(p), name) for name, prefixes in LAYERS.items() for p in prefixes
               if module == p or module.startswith(p + ".")]
    assert matches, f"dreamscope.{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def imports() -> set[tuple[str, str]]:
    found = set()
    for path in SRC.rglob("*.py"):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dreamscope"):
                names = ([a.name for a in node.names] if node.module == "dreamscope"
                         else [node.module.removeprefix("dreamscope.")])
            elif isinstance(node, ast.Import):
                names = [a.name.removeprefix("dreamscope.") for a in node.names if a.name.startswith("dreamscope.")]
            else:
                continue
            found.update((module, name) for name in names)
    return found


def test_no_module_imports_a_higher_layer():
    upward = {(a, b) for a, b in imports() if RANK[layer(b)] > RANK[layer(a)]}
    assert upward <= UPWARD, sorted(upward - UPWARD)
    assert UPWARD <= upward, f"fixed, remove from UPWARD: {sorted(UPWARD - upward)}"


def test_the_agent_imports_only_core_and_itself():
    agent = {(a, b) for a, b in imports() if a.startswith("agent")}
    assert {layer(b) for _, b in agent} <= {"core", "agent"}, sorted(agent)
