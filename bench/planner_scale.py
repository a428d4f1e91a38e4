"""Planning cost alone: `python -m bench.planner --only cost` under its former name.

Run from the repository root: `python -m bench.planner_scale [--quick]`. The measurement (ms per
incident at 100, 1,000 and 10,000 facilitators, seeded surge of bench/surge.py) lives in
bench/planner.py next to the planning-quality benchmark.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # also runnable as `python bench/planner_scale.py`

from bench import planner  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run only the cost half of bench.planner."""
    args = sys.argv[1:] if argv is None else list(argv)
    return planner.main(["--only", "cost", *args])


if __name__ == "__main__":
    sys.exit(main())
