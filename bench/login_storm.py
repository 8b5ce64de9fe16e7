#!/usr/bin/env python3
"""Login storm load generator for bench/login-storm.sh (Python standard library only).

Each of CONNECTIONS threads is one family: its own account (PREFIX.NNN, NNN = thread number
modulo ACCOUNTS) and its own loopback address (127.1.x.y), so the per-account and per-address
failed-attempt counters (SPEC §3.1) see what a storm of real families would give them. Each
login is a fresh browser on a new connection: GET /login for the CSRF cookie and hidden field,
then POST /login with the identifier and password. The threads start together and keep going
for ROUNDS logins each, so CONNECTIONS logins are in flight at once. While they run, the
server's VmRSS is sampled every 50 ms.

Prints one line of JSON: logins, seconds, statuses, peak sampled RSS.
"""

import argparse
import http.client
import json
import re
import threading
import time
import urllib.parse
from collections import Counter

CSRF_FIELD = re.compile(rb'name="csrf" value="([^"]+)"')


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def login(host, port, source, identifier, password, timeout):
    """One login as a new browser; returns the POST's status (or 'error:<kind>')."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", "/login")
        page = conn.getresponse()
        body = page.read()
        if page.status != 200:
            return f"get:{page.status}"
        cookies = []
        for name, value in page.getheaders():
            if name.lower() == "set-cookie":
                cookies.append(value.split(";", 1)[0])
        field = CSRF_FIELD.search(body)
        if not field or not cookies:
            return "get:no-csrf"
        form = urllib.parse.urlencode(
            {"csrf": field.group(1).decode(), "identifier": identifier, "password": password}
        )
        conn.request(
            "POST",
            "/login",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": "; ".join(cookies),
            },
        )
        answer = conn.getresponse()
        answer.read()
        return str(answer.status)
    except Exception as e:  # a refused or reset connection is a result, not a crash
        return f"error:{type(e).__name__}"
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pid", type=int, required=True, help="server PID, for RSS samples")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--prefix", default="tempete", help="accounts PREFIX.000, PREFIX.001…")
    parser.add_argument("--accounts", type=int, default=256)
    parser.add_argument("--password", default="Demo2026clef")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    statuses = Counter()
    lock = threading.Lock()
    start = threading.Barrier(args.connections + 1)

    def browser(n):
        identifier = f"{args.prefix}.{n % args.accounts:03d}"
        source = f"127.1.{n // 200}.{n % 200 + 1}"
        start.wait()
        for _ in range(args.rounds):
            status = login(args.host, args.port, source, identifier, args.password, args.timeout)
            with lock:
                statuses[status] += 1

    threads = [
        threading.Thread(target=browser, args=(n,), daemon=True) for n in range(args.connections)
    ]
    for thread in threads:
        thread.start()

    peak = rss_kib(args.pid)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(args.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - began
    done.set()
    sampler.join()

    print(
        json.dumps(
            {
                "logins": sum(statuses.values()),
                "seconds": round(seconds, 2),
                "statuses": dict(sorted(statuses.items())),
                "peak_sampled_rss_kib": peak,
            }
        )
    )


if __name__ == "__main__":
    main()
