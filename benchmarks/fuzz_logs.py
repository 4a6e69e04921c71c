"""Fuzz the log readers and the doctor with mutated real logs: every case must end in a diagnosis or a clean error.

Seeds are the log fixtures of tests/fixtures/logs (excerpts of real public logs and logs written
from each code base's logging calls) and, where ../shared/realruns sits beside the clone, windows
of the full real logs. A case takes a window of a seed, applies one to three mutations (flipped,
inserted or deleted bytes; a truncated line or file; NaN, ±Infinity, 1e308, 1e309, huge
integers; values of the wrong type; unknown and duplicate keys; steps that go backwards, are
negative, fractional or text; lines of another format; CRLF, blank lines, gzip, a gzip cut
short; a saved config or meta.json that is not what it should be) and then does what
`dreamscope diagnose LOG --json` does: read_run, diagnose, to_dict, json.dumps(allow_nan=False).
A case passes if that ends in a diagnosis, or in a DreamscopeError whose message names the
file and a line (``<file>:<line>``), on one line. Anything else is a crash,
printed with its input and traceback.

    taskset -c 0 python benchmarks/fuzz_logs.py [--cases 100000] [--seed 0] [--json] [--show 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "logs"
REALRUNS = ROOT.parent / "shared" / "realruns"
#: Lines a case keeps of its seed at most (small cases, many of them).
WINDOW = 120
SPECIAL_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e308", "-1e308", "1e309", "-0.0", "0",
                   "123456789012345678901234567890", "5e-324", "1.5.5", "-", "1e", "0x10", ".5"]
WRONG_TYPES = ['"text"', "null", "true", "false", "[1, 2]", '{"a": 1}', '""', "[]", "{}"]
_NUMBER = re.compile(rb"(?<=: )-?\d[\d.eE+-]*")


@dataclass
class Seed:
    name: str
    kind: str  # "jsonl" or "csv"
    lines: list[bytes]
    config: bytes | None = None


@dataclass
class Case:
    file: Path
    description: list[str] = field(default_factory=list)


def load_seeds(include_realruns: bool = True) -> list[Seed]:
    """Every jsonl / csv fixture (with its config.yaml if any), and the real runs when present."""
    seeds = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix not in (".jsonl", ".csv") or not path.is_file():
            continue
        config = next((c.read_bytes() for c in (path.parent / "config.yaml", path.parent / ".hydra" / "config.yaml")
                       if c.is_file()), None)
        seeds.append(Seed(str(path.relative_to(FIXTURES)), path.suffix[1:], path.read_bytes().splitlines(True), config))
    if include_realruns and REALRUNS.is_dir():
        for path in sorted(REALRUNS.glob("*/metrics.jsonl")):
            seeds.append(Seed(f"realruns/{path.parent.name}", "jsonl", path.read_bytes().splitlines(True)))
    return seeds


def _mutate_number(rnd: random.Random, line: bytes) -> bytes:
    spots = list(_NUMBER.finditer(line))
    if not spots:
        return line
    spot = rnd.choice(spots)
    new = rnd.choice(SPECIAL_NUMBERS + WRONG_TYPES).encode()
    return line[:spot.start()] + new + line[spot.end():]


def _mutate_step(rnd: random.Random, line: bytes) -> bytes:
    new = rnd.choice([b"-5", b"0", b"1e20", b"2.5", b'"12"', b"null", b"NaN", b"9223372036854775807",
                      b"18446744073709551616", str(rnd.randrange(10**7)).encode()])
    return re.sub(rb'("(?:step|_step|envSteps)": ?)-?[\w.+"-]+', lambda m: m.group(1) + new, line, count=1)


def mutate(rnd: random.Random, seed: Seed, folder: Path) -> Case:
    """Write one mutated case under ``folder`` and say what was done to it."""
    start = rnd.randrange(max(1, len(seed.lines) - WINDOW))
    header = seed.lines[:1] if seed.kind == "csv" else []
    body = seed.lines[max(start, len(header)):start + rnd.randint(1, WINDOW)]
    lines = header + body
    what = [f"seed {seed.name} lines {start + 1}..{start + len(body)}"]
    for _ in range(rnd.randint(1, 3)):
        op = rnd.randrange(16)
        i = rnd.randrange(len(lines)) if lines else 0
        if op == 0 and lines:
            data = bytearray(lines[i])
            for _ in range(rnd.randint(1, 4)):
                if data:
                    data[rnd.randrange(len(data))] = rnd.randrange(256)
            lines[i] = bytes(data)
            what.append(f"random bytes in line {i + 1}")
        elif op == 1 and lines:
            cut = rnd.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:cut] + (b"\n" if rnd.random() < 0.5 else b"")
            what.append(f"line {i + 1} cut at byte {cut}")
        elif op == 2 and lines:
            for _ in range(rnd.randint(1, 5)):
                j = rnd.randrange(len(lines))
                lines[j] = _mutate_number(rnd, lines[j])
            what.append("special numbers / wrong types in values")
        elif op == 3 and lines:
            lines[i] = _mutate_step(rnd, lines[i])
            what.append(f"step of line {i + 1} changed")
        elif op == 4 and lines and seed.kind == "jsonl":
            key = rnd.choice([b"zz/unknown", b"step", b"policy/entropy", b"train/ent/action", b"", b"a\\u0000b",
                              b"episode/score"])
            added = b', "' + key + b'": ' + rnd.choice(SPECIAL_NUMBERS).encode() + b"}\n"
            lines[i] = re.sub(rb"\}\s*$", lambda _: added, lines[i])
            what.append(f"key {key!r} added to line {i + 1}")
        elif op == 5:
            lines.insert(i, rnd.choice([b"step,policy/entropy\n", b"1,2,3\n", b"\n", b"   \n", b"\x00\x01\x02\n",
                                        b'{"step": 1, "policy/entropy": 1.0}\n', b"[1, 2]\n", b"#comment\n",
                                        b'{"step": 3, "nested": {"a": [1, {"b": 2}]}}\n', b"[" * 5000 + b"\n"]))
            what.append(f"foreign line inserted at {i + 1}")
        elif op == 6 and len(lines) > 1:
            rnd.shuffle(lines)
            what.append("lines shuffled")
        elif op == 7 and lines:
            del lines[i]
            what.append(f"line {i + 1} deleted")
        elif op == 8 and lines:
            lines = [line.replace(b"\n", b"\r\n") for line in lines]
            what.append("CRLF")
        elif op == 9 and lines:
            lines = lines + lines[: rnd.randint(1, len(lines))]
            what.append("lines repeated (restart)")
        elif op == 10:
            lines = lines[: rnd.randint(0, 2)]
            what.append("all but the first lines dropped")
        elif op == 11 and lines:
            lines[i] = lines[i].replace(b",", b"", 1) if rnd.random() < 0.5 else lines[i].replace(b":", b",", 1)
            what.append(f"separator broken in line {i + 1}")
        elif op == 12 and lines:
            lines[i] = lines[i] * rnd.randint(2, 3)
            what.append(f"line {i + 1} repeated within itself")
        elif op == 13 and lines:
            lines[i] = lines[i].replace(b'"', b"", 2)
            what.append(f"quotes removed in line {i + 1}")
        elif op == 14 and lines:
            big = b"9" * rnd.choice([20, 400, 5000])
            lines[i] = re.sub(rb"\d+", big, lines[i], count=1)
            what.append(f"a {len(big)}-digit number in line {i + 1}")
        else:
            lines = [line.replace(b'": ', b'":', 1) for line in lines]
            what.append("compact separators")
    data = b"".join(lines)
    name = "metrics.jsonl" if seed.kind == "jsonl" else "log.csv"
    packing = rnd.random()
    if packing < 0.1:
        data, name = gzip.compress(data), name + ".gz"
        what.append("gzip")
    elif packing < 0.13:
        packed = gzip.compress(data)
        data, name = packed[: rnd.randrange(len(packed) + 1)], name + ".gz"
        what.append("gzip cut short")
    run_dir = folder / "run"
    run_dir.mkdir()
    (run_dir / name).write_bytes(data)
    extra = rnd.random()
    if extra < 0.1 and seed.config:
        config = bytearray(seed.config)
        for _ in range(rnd.randint(1, 6)):
            config[rnd.randrange(len(config))] = rnd.choice(b"x:{}[]- \n0.9")
        (run_dir / "config.yaml").write_bytes(bytes(config))
        what.append("config.yaml mangled")
    elif extra < 0.15 and seed.kind == "jsonl":
        meta = rnd.choice(['{"action_dim": 0}', '{"dist": "beta"}', '{"std_min": 2, "std_max": 1}', "[1]", "{",
                           '{"eta": NaN, "action_dim": 4}', '{"action_dim": 4, "dist": "tanh_normal"}'])
        (run_dir / "meta.json").write_text(meta)
        what.append(f"meta.json {meta}")
    return Case(run_dir / name, what)


def run_case(case: Case) -> str | None:
    """None if the case ends in a diagnosis or a clean error, else the traceback."""
    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.diagnostics.doctor_cli import load_run
    from dreamscope.errors import DreamscopeError

    try:
        run = load_run(str(case.file), None, {})
        json.dumps(diagnose(run).to_dict(), allow_nan=False, ensure_ascii=False)
    except DreamscopeError as error:
        message = str(error)
        named = re.search(re.escape(str(case.file.parent)) + r"/[^\s:]+:\d+", message)  # <file in the run>:<line>
        return None if named and "\n" not in message else f"DreamscopeError without file and line: {message}"
    except Exception:  # noqa: BLE001 - the point is to catch everything that is not a clean error
        return traceback.format_exc()
    return None


def fuzz(cases: int, seed: int, include_realruns: bool = True, table_every: int = 2, seeds: list[Seed] | None = None):
    """Run ``cases`` cases (from ``seeds``, default all); yields (case number, Case, input bytes, traceback) per crash.

    Every ``table_every``-th case lowers the reader's table threshold to one line, so the bulk
    path sees the mutations too, not only the line-by-line one.
    """
    from dreamscope.logs import jsonl

    rnd = random.Random(seed)
    seeds = seeds or load_seeds(include_realruns)
    default_min = jsonl.MIN_TABLE_LINES
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(cases):
            folder = Path(tmp) / str(number)
            folder.mkdir()
            case = mutate(rnd, rnd.choice(seeds), folder)
            jsonl.MIN_TABLE_LINES = 1 if number % table_every == 0 else default_min
            try:
                crash = run_case(case)
            finally:
                jsonl.MIN_TABLE_LINES = default_min
            if crash is not None:
                yield number, case, case.file.read_bytes(), crash
            for path in sorted(folder.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
            folder.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=3, help="crashes printed in full (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe

    started = time.perf_counter()
    crashes = []
    for number, case, data, crash in fuzz(args.cases, args.seed):
        crashes.append({"case": number, "mutations": case.description, "file": case.file.name,
                        "input_head": data[:300].decode("utf-8", "replace"), "traceback": crash})
    seconds = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for crash in crashes:
        last = crash["traceback"].strip().splitlines()[-1]
        kinds[last] = kinds.get(last, 0) + 1
    command = f"python benchmarks/fuzz_logs.py {' '.join(sys.argv[1:])}".strip()
    if args.json:
        print(json.dumps({"machine": describe(), "command": command, "cases": args.cases, "crashes": len(crashes),
                          "seconds": round(seconds, 1), "seeds": len(load_seeds()), "realruns": REALRUNS.is_dir(),
                          "crash_kinds": kinds, "first_crashes": crashes[: args.show]}))
        return
    print(describe())
    print(f"command: {command}")
    print(f"seeds: {len(load_seeds())} ({'with' if REALRUNS.is_dir() else 'without'} shared/realruns)\n")
    print("| cases tried | crashes | seconds | cases/s |")
    print("|---:|---:|---:|---:|")
    print(f"| {args.cases} | {len(crashes)} | {seconds:.0f} | {args.cases / seconds:.0f} |")
    for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"\n{count} x {kind}")
    for crash in crashes[: args.show]:
        print(f"\n--- case {crash['case']}: {'; '.join(crash['mutations'])}\n{crash['input_head']!r}\n{crash['traceback']}")


if __name__ == "__main__":
    main()
