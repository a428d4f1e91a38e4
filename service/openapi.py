"""Write the committed openapi.yaml from the code: `python -m service.openapi [PATH]`."""

from __future__ import annotations

import sys
from pathlib import Path


def generate() -> str:
    """The OpenAPI document the code describes."""
    from service.app import create_app, render_openapi

    services = create_app({"database_url": "sqlite://"}).extensions["debrief"]
    try:
        return render_openapi(services.api)
    finally:
        services.close()


def main(argv: list[str] | None = None) -> None:
    """Write the document to PATH (default: openapi.yaml in the current directory)."""
    args = sys.argv[1:] if argv is None else argv
    Path(args[0] if args else "openapi.yaml").write_text(generate(), encoding="utf-8")


if __name__ == "__main__":
    main()
