"""`python -m bench <name> [args...]`: run one benchmark by name; without a name, list them."""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Callable

# name -> (module, what it measures against which target of DESIGN.md section 6)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "intake": ("bench.intake", "POST /v1/incidents on gunicorn + PostgreSQL: p99 < 100 ms at 100 req/s, "
                               "throughput >= 20% of /healthz"),
    "planner": ("bench.planner", "planning quality on a seeded surge (>= 98% of the CP-SAT optimum) and cost "
                                 "(< 10 ms per incident at 1,000 facilitators, 10x pool <= 3x time)"),
    "feed": ("bench.feed", "a facilitator's feed with 2,000 sessions: render < 50 ms, 304 < 5 ms"),
    "jobs": ("bench.jobs", "10,000 outbox rows through 2 RQ workers: >= 50% of no-op jobs' throughput"),
}


def usage() -> str:
    """The list of benchmarks, one line each."""
    width = max(map(len, BENCHMARKS))
    lines = ["usage: python -m bench <name> [args...]   (python -m bench <name> --help for its options)", "",
             "benchmarks:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in BENCHMARKS.items()]
    return "\n".join(lines)


def run(entry: Callable[..., int | None], argv: list[str], prog: str) -> int:
    """Call a benchmark's main with argv, or with sys.argv for a main that takes no arguments."""
    if inspect.signature(entry).parameters:
        code = entry(argv)
    else:
        saved = sys.argv
        sys.argv = [prog, *argv]
        try:
            code = entry()
        finally:
            sys.argv = saved
    return 0 if code is None else int(code)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the named benchmark; list the benchmarks when there is no name or on --help."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in BENCHMARKS:
        print(f"python -m bench: no benchmark named {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name = BENCHMARKS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"python -m bench: {module_name} is not in this checkout", file=sys.stderr)
        return 2
    return run(module.main, rest, f"python -m bench {name}")


if __name__ == "__main__":
    sys.exit(main())
