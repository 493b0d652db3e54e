"""Run the benchmarks: python -m benchmarks [geocode|locate|import ...] [--points N]."""

from __future__ import annotations

import argparse

from benchmarks import (
    api,
    coverage,
    geocode,
    hotspots,
    imports,
    incidents,
    locate,
    mappage,
    optimiser,
    report,
    webload,
)

BENCHMARKS = {
    "import": imports.run,
    "geocode": geocode.run,
    "locate": locate.run,
    "report": report.run,
    "api": api.run,
    "incidents": incidents.run,
    "optimiser": optimiser.run,
    "coverage": coverage.run,
    "hotspots": hotspots.run,
    "webload": webload.run,
    "mappage": mappage.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--points", type=int, default=geocode.POINTS, help="points for geocode")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}")
    for name in args.names or list(BENCHMARKS):
        print(f"== {name}", flush=True)
        if name == "geocode":
            geocode.run(points=args.points)
        else:
            BENCHMARKS[name]()


if __name__ == "__main__":
    main()
