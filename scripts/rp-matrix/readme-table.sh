#!/usr/bin/env bash
# Put the relying-party matrix table into README.md: replaces what lies
# between the lines `<!-- works-with:start -->` and `<!-- works-with:end -->`
# with the table of the last run (scripts/rp-matrix/run.sh writes it to
# target/rp-matrix/works-with.md). Touches nothing else.
#
#   bash scripts/rp-matrix/readme-table.sh [TABLE.md]       # update README.md
#   bash scripts/rp-matrix/readme-table.sh --check [TABLE.md]  # exit 1 if it differs
#
# Environment: RP_MATRIX_DIR (where the table is) [target/rp-matrix],
# README (the file to update) [README.md].
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHECK=
if [[ ${1:-} == --check ]]; then CHECK=1; shift; fi
TABLE=${1:-${RP_MATRIX_DIR:-$ROOT/target/rp-matrix}/works-with.md}
README=${README:-$ROOT/README.md}

[[ -f $TABLE ]] || { echo "readme-table: no table at $TABLE (run scripts/rp-matrix/run.sh first)" >&2; exit 1; }
[[ -f $README ]] || { echo "readme-table: no $README" >&2; exit 1; }

python3 - "$README" "$TABLE" "$CHECK" <<'PY'
import sys
from pathlib import Path

readme, table, check = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
START, END = "<!-- works-with:start -->", "<!-- works-with:end -->"
text = readme.read_text(encoding="utf-8")
lines = text.splitlines(keepends=True)
starts = [i for i, l in enumerate(lines) if l.strip() == START]
ends = [i for i, l in enumerate(lines) if l.strip() == END]
if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
    sys.exit(f"readme-table: {readme.name} needs exactly one line {START} followed by one line {END}")
block = ["\n", *[l + "\n" for l in table.read_text(encoding="utf-8").strip().splitlines()], "\n"]
new = "".join(lines[: starts[0] + 1] + block + lines[ends[0]:])
if new == text:
    print(f"readme-table: {readme.name} is up to date")
elif check:
    sys.exit(f"readme-table: the works-with table in {readme.name} differs from {table}")
else:
    readme.write_text(new, encoding="utf-8")
    print(f"readme-table: {readme.name} updated from {table}")
PY
