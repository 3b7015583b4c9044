#!/usr/bin/env python3
"""Render relying-party matrix results (JSON lines) as a Markdown table.

    report.py [--out FILE] [--extra FILE]... RESULTS.jsonl...

Each input line is one cell of one backend:
    {"library": "authlib", "version": "1.9.10", "check": "refresh",
     "backend": "sqlite" | "postgres", "result": "pass" | "fail", "detail": "..."}

Writes the table (with its legend) to --out, prints it, then the failures
with their details, then a last line `N passed, M failed` counting the
RESULTS files. Rows from --extra files (results produced elsewhere, e.g. by
the Rust test suite) are shown in the table and listed under failures, but
are not counted. Exit status: 1 when a counted check failed or no result was
counted at all, 0 otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Known rows and columns, in table order; anything else is appended in the
# order it first appears.
ROWS = [
    "authlib",
    "PyJWT",
    "openid-client",
    "jose",
    "Chromium SPA (fetch, CORS)",
    "Chromium login (hosted pages)",
    "openidconnect",
]
COLUMNS = [
    "discovery",
    "register",
    "password grant",
    "code flow (PKCE)",
    "SSO",
    "prompt=login",
    "refresh",
    "revoke",
    "logout",
    "introspect",
    "userinfo",
    "error body",
    "access token (at+jwt)",
    "access token (typ JWT)",
    "ID token",
    "ES256 tokens",
    "EdDSA tokens",
    "keyboard",
    "hosted pages",
]
BACKENDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
PASS, FAIL, NOT_RUN = "✅", "❌", "–"
FIELDS = ("library", "version", "check", "backend", "result")


def load(path: Path, source: str) -> list[dict]:
    records = []
    if not path.exists():
        return records
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise SystemExit(f"{path}:{n}: not JSON: {e}")
        missing = [f for f in FIELDS if not isinstance(rec.get(f), str) or not rec[f]]
        if missing or rec["result"] not in ("pass", "fail"):
            raise SystemExit(f"{path}:{n}: needs string fields {FIELDS} with result pass|fail: {line[:200]}")
        rec["source"] = source
        records.append(rec)
    return records


def ordered(items: list[str], known: list[str]) -> list[str]:
    seen = list(dict.fromkeys(items))
    return [k for k in known if k in seen] + [k for k in seen if k not in known]


def escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(records: list[dict]) -> str:
    backends = ordered([r["backend"] for r in records], list(BACKENDS))
    rows = ordered([r["library"] for r in records], ROWS)
    columns = ordered([r["check"] for r in records], COLUMNS)
    # (library, check, backend) -> pass (all passed) / fail (any failed)
    cells: dict[tuple[str, str, str], bool] = {}
    versions: dict[str, list[str]] = {}
    for r in records:
        key = (r["library"], r["check"], r["backend"])
        cells[key] = cells.get(key, True) and r["result"] == "pass"
        versions.setdefault(r["library"], [])
        if r["version"] not in versions[r["library"]]:
            versions[r["library"]].append(r["version"])

    names = " / ".join(BACKENDS.get(b, b) for b in backends)
    lines = [
        f"Each cell: {names}. {PASS} pass, {FAIL} fail, {NOT_RUN} not run; "
        "blank: not exercised with that library.",
        "",
        "| library | version | " + " | ".join(escape(c) for c in columns) + " |",
        "|---|---|" + "|".join(":-:" for _ in columns) + "|",
    ]
    for lib in rows:
        out = []
        for col in columns:
            if not any((lib, col, b) in cells for b in backends):
                out.append("")
                continue
            marks = []
            for b in backends:
                ok = cells.get((lib, col, b))
                marks.append(NOT_RUN if ok is None else PASS if ok else FAIL)
            out.append(" / ".join(marks))
        version = ", ".join(versions[lib])
        lines.append(f"| {escape(lib)} | {escape(version)} | " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path, help="JSON-lines results of this run (counted)")
    ap.add_argument("--extra", action="append", default=[], type=Path,
                    help="JSON-lines results from elsewhere (shown, not counted); missing files are skipped")
    ap.add_argument("--out", type=Path, help="write the Markdown table here too")
    args = ap.parse_args()

    counted = [r for p in args.results for r in load(p, "run")]
    extra = [r for p in args.extra for r in load(p, str(p))]
    table = render(counted + extra)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")

    print(table)
    failures = [r for r in counted + extra if r["result"] == "fail"]
    rows = ordered([r["library"] for r in counted + extra], ROWS)
    columns = ordered([r["check"] for r in counted + extra], COLUMNS)
    backends = ordered([r["backend"] for r in counted + extra], list(BACKENDS))
    failures.sort(key=lambda r: (rows.index(r["library"]), columns.index(r["check"]), backends.index(r["backend"])))
    if failures:
        print("Failures:")
        for r in failures:
            where = "" if r["source"] == "run" else f" (from {Path(r['source']).name})"
            detail = " ".join(str(r.get("detail", "")).split()) or "(no detail)"
            print(f"- {r['library']} {r['version']} · {r['check']} · {BACKENDS.get(r['backend'], r['backend'])}"
                  f"{where}: {detail}")
        print()
    if extra:
        print(f"({len(extra)} result(s) from {', '.join(sorted({p.name for p in args.extra if p.exists()}))} "
              "shown above, not counted below)")
    passed = sum(r["result"] == "pass" for r in counted)
    failed = sum(r["result"] == "fail" for r in counted)
    if not counted:
        print("no results were recorded", file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    return 0 if counted and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
