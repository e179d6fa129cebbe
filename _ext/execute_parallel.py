"""Execute the book's notebooks on every core, into the cache that ``jupyter-book build`` then reads.

jupyter-book executes the notebooks one after the other, on one core. ``make book`` first runs this script:

1. it empties the book's execution cache (``_build/.jupyter_cache``), so that every build runs every
   lesson again and the pages show what the library computes today;
2. it executes every notebook in ``_toc.yml`` with jupyter-cache's ``local-parallel`` executor: one process
   per core, each notebook in its own folder, as the build would run it;
3. it stops, printing the traceback, if a notebook fails.

The build (``execute_notebooks: cache`` in ``_config.yml``) then finds every notebook's outputs in the cache
and executes nothing. Without this script, ``jupyter-book build .`` still works: it executes, serially, the
notebooks the cache does not hold.

Usage: ``python _ext/execute_parallel.py`` from the repository's root.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"


def toc_notebooks(entry) -> list[Path]:
    """Every ``file:`` of the table of contents that is a notebook, in the book's order."""
    found = []
    if isinstance(entry, dict):
        name = entry.get("file") or entry.get("root")
        if name and (ROOT / f"{name}.ipynb").exists():
            found.append(ROOT / f"{name}.ipynb")
        for value in entry.values():
            found += toc_notebooks(value) if isinstance(value, (dict, list)) else []
    elif isinstance(entry, list):
        for item in entry:
            found += toc_notebooks(item)
    return found


def main() -> int:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    notebooks = toc_notebooks(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    cache = get_cache(str(CACHE))
    cache.clear_cache()
    for path in notebooks:
        cache.add_nb_to_project(str(path))
    executor = load_executor("local-parallel", cache)
    result = executor.run_and_cache(timeout=config.get("timeout", 300),
                                    allow_errors=config.get("allow_errors", False))
    failed = result.errored + result.excepted
    for uri in failed:
        record = cache.get_project_record(uri)
        print(f"{uri} failed:\n{record.traceback}", file=sys.stderr)
    print(f"executed {len(result.succeeded)} of {len(notebooks)} notebooks into {CACHE.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
