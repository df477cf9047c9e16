#!/usr/bin/env python3
"""Print every PromQL expression of a Grafana dashboard, one per line.

Grafana's own interval variables ($__rate_interval, $__interval, $__range) are
replaced by a fixed duration so that each line can be sent to Prometheus as it
is (promtool query instant, /api/v1/query). Any other "$" variable is an error:
the dashboard is meant to need none.

Usage: deploy/grafana/list_queries.py [--rate-interval 1m] [DASHBOARD.json]
"""

import argparse
import json
import os
import re
import sys

DEFAULT_DASHBOARD = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "dashboards", "ratelimit.json")
GRAFANA_INTERVALS = ("$__rate_interval", "$__interval", "$__range")


def walk_panels(panels):
    """Yields every panel, including the ones nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def expressions(dashboard):
    for panel in walk_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr", "").strip()
            if expr:
                yield panel.get("title", "?"), expr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dashboard", nargs="?", default=DEFAULT_DASHBOARD)
    parser.add_argument("--rate-interval", default="1m",
                        help="duration put in place of Grafana's interval variables")
    args = parser.parse_args()

    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)

    count = 0
    for title, expr in expressions(dashboard):
        for variable in GRAFANA_INTERVALS:
            expr = expr.replace(variable, args.rate_interval)
        leftover = re.search(r"\$\{?\w+", expr)
        if leftover:
            sys.exit(f"list_queries: panel {title!r} uses dashboard variable "
                     f"{leftover.group(0)!r}, which Prometheus cannot evaluate: {expr}")
        # One expression a line: fold any line breaks written for readability.
        print(" ".join(expr.split()))
        count += 1
    if count == 0:
        sys.exit(f"list_queries: no expressions found in {args.dashboard}")


if __name__ == "__main__":
    main()
