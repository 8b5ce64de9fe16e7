#!/usr/bin/env python3
"""Load generator for bench/million.sh (Python standard library only).

THREADS threads, each one family: its own account (PREFIX.NNN, NNN = thread number) and its
own loopback address (127.2.x.y, so the per-address failed-attempt counter of SPEC §3.1 sees
one family each), on one keep-alive connection per thread. For SECONDS seconds after WARMUP
seconds (not counted), each thread repeats one operation:

- login: a new browser signs in through the pages: GET /login for the CSRF cookie and hidden
  field, POST /login with identifier and password (303 expected). The time of one operation
  is both requests.
- exchange: the thread signs in once (as above), then repeats the code flow of a relying
  party: GET /authorize (response_type=code, PKCE S256, scope openid profile children) with
  the session cookie → 302 to the redirect URI with a code, then POST /token with
  client_secret_basic (200 with the tokens expected). The time of one operation is both.

Prints one line of JSON: ops (successful), seconds, rate, p50/p99 in ms, statuses, and the
server's CPU time per operation (utime+stime of --pid over the counted window: unlike the
rate, it does not depend on how fast this client is).
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter

CSRF_FIELD = re.compile(rb'name="csrf" value="([^"]+)"')
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (3rd field); utime and stime are the 14th and 15th.
    return (int(fields[11]) + int(fields[12])) / TICKS


class Browser:
    """One keep-alive connection and a cookie jar."""

    def __init__(self, host, port, source, timeout):
        self.args = (host, port)
        self.source = source
        self.timeout = timeout
        self.conn = None
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    *self.args, timeout=self.timeout, source_address=(self.source, 0)
                )
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                if val:
                    self.cookies[key.strip()] = val
                else:
                    self.cookies.pop(key.strip(), None)
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return response, data


def login(browser, identifier, password):
    browser.cookies.clear()
    page, body = browser.request("GET", "/login")
    if page.status != 200:
        return f"get:{page.status}"
    field = CSRF_FIELD.search(body)
    if not field:
        return "get:no-csrf"
    form = urllib.parse.urlencode(
        {"csrf": field.group(1).decode(), "identifier": identifier, "password": password}
    )
    answer, _ = browser.request(
        "POST", "/login", body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return str(answer.status)


def exchange(browser, client_id, secret, redirect_uri):
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    state = secrets.token_urlsafe(8)
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": "openid profile children", "state": state, "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge.decode(), "code_challenge_method": "S256",
    })
    answer, _ = browser.request("GET", f"/authorize?{query}")
    location = answer.getheader("Location", "")
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if answer.status not in (302, 303) or "code" not in params:
        return f"authorize:{answer.status}"
    if params.get("state") != [state]:
        return "authorize:state"
    basic = base64.b64encode(
        f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}".encode()
    ).decode()
    form = urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": params["code"][0],
        "redirect_uri": redirect_uri, "code_verifier": verifier,
    })
    # The token endpoint is another party's connection: no browser cookies.
    cookies, browser.cookies = browser.cookies, {}
    try:
        token, data = browser.request(
            "POST", "/token", body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Authorization": f"Basic {basic}"},
        )
    finally:
        browser.cookies = cookies
    if token.status != 200 or b"id_token" not in data:
        return f"token:{token.status}"
    return "200"


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["login", "exchange"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pid", type=int, required=True, help="server PID, for its CPU time")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--prefix", default="banc")
    parser.add_argument("--password", default="Demo2026clef")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:9/cb")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    statuses = Counter()
    times = []
    lock = threading.Lock()
    start = threading.Barrier(args.threads + 1)
    window = {}

    def family(n):
        identifier = f"{args.prefix}.{n:03d}"
        browser = Browser(args.host, args.port, f"127.2.{n // 200}.{n % 200 + 1}", args.timeout)
        if args.mode == "exchange":
            status = login(browser, identifier, args.password)
            if status != "303":
                with lock:
                    statuses[f"first-login:{status}"] += 1
        start.wait()
        while True:
            began = time.monotonic()
            if began >= window["end"]:
                break
            try:
                if args.mode == "login":
                    status = login(browser, identifier, args.password)
                else:
                    status = exchange(browser, args.client_id, args.client_secret,
                                      args.redirect_uri)
            except Exception as e:  # a refused or reset connection is a result, not a crash
                status = f"error:{type(e).__name__}"
                browser.conn = None
            took = time.monotonic() - began
            if began >= window["begin"] and began + took <= window["end"]:
                with lock:
                    statuses[status] += 1
                    if status in ("303", "200"):
                        times.append(took)

    threads = [threading.Thread(target=family, args=(n,), daemon=True)
               for n in range(args.threads)]
    for thread in threads:
        thread.start()
    now = time.monotonic()
    window["begin"] = now + args.warmup
    window["end"] = window["begin"] + args.seconds
    start.wait()
    time.sleep(max(0, window["begin"] - time.monotonic()))
    cpu_before = cpu_seconds(args.pid)
    time.sleep(max(0, window["end"] - time.monotonic()))
    cpu_after = cpu_seconds(args.pid)
    for thread in threads:
        thread.join()

    times.sort()
    ops = len(times)
    print(json.dumps({
        "mode": args.mode,
        "ops": ops,
        "seconds": args.seconds,
        "rate": round(ops / args.seconds, 1),
        "p50_ms": round(1000 * percentile(times, 50), 1) if times else None,
        "p99_ms": round(1000 * percentile(times, 99), 1) if times else None,
        "server_cpu_ms_per_op": round(1000 * (cpu_after - cpu_before) / ops, 2) if ops else None,
        "statuses": dict(sorted(statuses.items())),
    }))


if __name__ == "__main__":
    main()
