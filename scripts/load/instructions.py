"""Counts the instructions Gatehouse runs per answer, under callgrind.

Started by instructions.sh with the server already running under
`valgrind --tool=callgrind`. For each scenario: warm up, zero callgrind's
counters, send N requests one after another, dump the counters, and sum the
user-space instructions of every thread. Instruction counts do not move
with the host's speed, so they compare two builds on a noisy machine, where
CPU time per answer moves by 25 % from one run to the next. Kernel time
(sockets, file I/O, thread wake-ups) is not counted.

Usage: instructions.py BASE_URL VALGRIND_PID N OUT_DIR
"""

import collections
import glob
import http.client
import json
import os
import re
import subprocess
import sys
import time

BASE, PID, N, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
HOST, PORT = BASE.split("//")[1].split(":")
EMAIL, PASSWORD = "count@example.com", "vivid-Meadow-lantern-42"
conn = http.client.HTTPConnection(HOST, int(PORT))


def call(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
    return data


def form(**fields):
    from urllib.parse import urlencode

    return urlencode(fields), {"Content-Type": "application/x-www-form-urlencoded"}


def ctl(*args):
    subprocess.run(["callgrind_control", *args, PID], check=True, capture_output=True)


def self_costs(path):
    """Self instruction count per function of one callgrind dump."""
    names, cost, fn, in_call = {}, collections.Counter(), None, False
    for line in open(path, errors="replace"):
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if m.group(1) == "fn":
                fn = names.get(m.group(2))
            continue
        if line.startswith("calls="):
            in_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if in_call:
                in_call = False  # inclusive cost of a call: not this function's own
            elif fn and len(line.split()) > 1:
                cost[fn] += int(line.split()[1])
    return cost


GROUPS = [
    ("RSA / big numbers (aws-lc)", re.compile(r"aws_lc.*(rsaz|bn_|BN_|RSA|mont)")),
    ("other aws-lc (SHA-256, ECDSA, Ed25519)", re.compile(r"aws_lc|fiat_|p256|nistz|25519", re.I)),
    ("SQLite", re.compile(r"^(sqlite3|wal|pcache|btree|vdbe|pager)|sqlite", re.I)),
    ("memcpy / memset / memmove", re.compile(r"mem(cpy|set|move|cmp)")),
    ("malloc / free", re.compile(r"malloc|free|_int_|unlink_chunk|calloc|realloc")),
]


def count(name, work):
    """Self instructions per function while `work()` runs; the dumps stay
    in OUT as NAME.I.callgrind."""
    for f in glob.glob(f"{OUT}/callgrind.out.{PID}*"):
        os.remove(f)
    ctl("-z")
    work()
    ctl("-d", name)
    time.sleep(0.5)
    cost = collections.Counter()
    for i, f in enumerate(sorted(glob.glob(f"{OUT}/callgrind.out.{PID}*"))):
        cost.update(self_costs(f))
        os.rename(f, f"{OUT}/{name}.{i}.callgrind")
    return cost


def measure(name, request):
    cost = count(name, lambda: [request(i) for i in range(N)])
    total = sum(cost.values())
    split = collections.Counter()
    for fn, c in cost.items():
        group = next((g for g, rx in GROUPS if rx.search(fn)), "the rest (HTTP, JSON, JWT, our code)")
        split[group] += c
    parts = "; ".join(f"{g} {100 * c / total:.0f} %" for g, c in split.most_common())
    print(f"| {name} | {total / N / 1000:,.1f} k | {parts} |")


call("POST", "/account/register", json.dumps({"email": EMAIL, "password": PASSWORD}),
     {"Content-Type": "application/json"})
tokens = json.loads(call("POST", "/oauth/token", *form(grant_type="password", username=EMAIL,
                                                       password=PASSWORD)))
bearer = {"Authorization": "Bearer " + tokens["access_token"]}
chain = [tokens["refresh_token"]]


def refresh(_):
    t = json.loads(call("POST", "/oauth/token", *form(grant_type="refresh_token", refresh_token=chain[0])))
    chain[0] = t["refresh_token"]


jwks = lambda _: call("GET", "/.well-known/jwks.json")
account_me = lambda _: call("GET", "/account/me", headers=bearer)
for i in range(50):
    jwks(i), account_me(i), refresh(i)
print(f"| scenario | instructions per answer (user space, {N} answers) | split (approximate, by function name) |")
print("|---|---|---|")
measure("jwks", jwks)
measure("account_me", account_me)
measure("refresh", refresh)
# What the counts include besides the answers: the server's own periodic
# work (metrics, key reloads, heap trims), counted here over idle seconds.
idle = count("idle", lambda: time.sleep(10))
print()
print(f"Idle, for comparison: {sum(idle.values()) / 10 / 1000:,.1f} k instructions a second of the server's background work.")
