#!/usr/bin/env python3
"""Recovery timing client for bench/recovery-timing.sh (Python standard library only).

Asks the recovery pages about identifiers and addresses of several kinds and compares the
answers: status codes, bodies, and time (issue 8: no enumeration).

Two flows, each as a new browser on a new connection (kept alive for the flow's requests,
closed after it), one flow at a time (sequential), every request from its own client
address (X-Forwarded-For 10.x.y.z, the server trusting 127.0.0.1 as a proxy):

  password flow  GET /mot-de-passe-oublie (CSRF cookie and field), then
                 POST /mot-de-passe-oublie            identifier          (timed: "identifier step")
                 POST /mot-de-passe-oublie/envoyer    identifier, channel=mail  (timed: "mail request")
                 with the CSRF field of the page the first POST returned;
  reminder flow  GET /identifiant-oublie, then POST /identifiant-oublie email (timed: "reminder").

Kinds of identifier: known (active, confirmed address; each request a different account,
so each is a real send), unknown (random, never created), provisional (imported, not
activated), no-email (active, no address), known-flood (one known account every time: the
per-recipient limit holds its mail back after 3). Kinds of address: confirmed (the known
accounts' addresses, each once), unknown (random), provisional (an imported account's
address, never confirmed), confirmed-flood (one confirmed address every time).

REQUESTS flows of each kind, all shuffled together (seeded), so drift on the machine falls
on every kind alike. A few warm-up flows (unknown identifiers and addresses) go first and
are not counted. Times are taken on the client, from sending the POST to having read the
whole answer, in ms.

Bodies are compared after replacing the CSRF field, the 13-digit reference, the identifier
typed, and the digits of the masked phone number (its shape is kept): what is left must be
byte-identical for every kind of a step. Headers are compared too, Date and X-Request-Id aside.

Prints tables of the figures, the checks, and against `known` (`confirmed` for addresses):
a bootstrap 95 % interval of the median difference, a Mann-Whitney U test (normal
approximation, ties corrected), and from U the chance that one request of the kind is
faster than one of `known` (0.50: a single request tells nothing).
"""

import argparse
import hashlib
import http.client
import math
import random
import re
import statistics
import string
import sys
import time
import urllib.parse
from collections import Counter, defaultdict

CSRF_FIELD = re.compile(rb'name="csrf" value="([^"]+)"')
REFERENCE = re.compile(rb"\b[1-9][0-9]{12}\b")
PHONE = re.compile(rb'(<span dir="ltr">)([^<]*)(</span>)')
DIGIT = re.compile(rb"[0-9]")
VARYING_HEADERS = {"date", "x-request-id"}

IDENTIFIER_STEP = "POST /mot-de-passe-oublie (identifier)"
MAIL_STEP = "POST /mot-de-passe-oublie/envoyer (channel=mail)"
REMINDER_STEP = "POST /identifiant-oublie (email)"

ID_KINDS = ["known", "unknown", "provisional", "no-email", "known-flood"]
MAIL_KINDS = ["confirmed", "unknown", "provisional", "confirmed-flood"]
REFERENCE_KIND = {IDENTIFIER_STEP: "known", MAIL_STEP: "known", REMINDER_STEP: "confirmed"}


class Client:
    """One browser: one connection, its cookies, a fresh client address per request."""

    def __init__(self, host, port, addresses, timeout):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.cookies = {}
        self.addresses = addresses

    def request(self, method, path, form=None):
        headers = {"X-Forwarded-For": next(self.addresses)}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        began = time.perf_counter_ns()
        self.conn.request(method, path, body=body, headers=headers)
        answer = self.conn.getresponse()
        content = answer.read()
        elapsed = (time.perf_counter_ns() - began) / 1e6
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val.strip()
        return answer, content, elapsed

    def close(self):
        self.conn.close()


def client_addresses():
    """10.0.0.1, 10.0.0.2, … one per request."""
    n = 0
    while True:
        n += 1
        yield f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"


def csrf_of(body):
    found = CSRF_FIELD.search(body)
    if not found:
        raise RuntimeError("no CSRF field in the page")
    return found.group(1).decode()


def normalise(body, typed):
    body = CSRF_FIELD.sub(b'name="csrf" value="CSRF"', body)
    body = REFERENCE.sub(b"REFERENCE", body)
    for form in {typed, urllib.parse.quote(typed)}:
        body = body.replace(form.encode(), b"TYPED")
    return PHONE.sub(lambda m: m.group(1) + DIGIT.sub(b"9", m.group(2)) + m.group(3), body)


def header_shape(answer):
    return tuple(
        sorted(
            (name.lower(), "…" if name.lower() in VARYING_HEADERS else value)
            for name, value in answer.getheaders()
        )
    )


class Results:
    def __init__(self):
        self.times = defaultdict(lambda: defaultdict(list))
        self.statuses = defaultdict(lambda: defaultdict(Counter))
        self.lengths = defaultdict(lambda: defaultdict(Counter))
        self.bodies = defaultdict(lambda: defaultdict(Counter))
        self.samples = {}
        self.headers = defaultdict(lambda: defaultdict(Counter))
        self.references = defaultdict(lambda: defaultdict(int))

    def add(self, step, kind, answer, body, elapsed, typed):
        self.times[step][kind].append(elapsed)
        self.statuses[step][kind][answer.status] += 1
        self.lengths[step][kind][len(body)] += 1
        shape = normalise(body, typed)
        digest = hashlib.sha256(shape).hexdigest()[:12]
        self.bodies[step][kind][digest] += 1
        self.samples.setdefault(digest, shape)
        self.headers[step][kind][header_shape(answer)] += 1
        if REFERENCE.search(body):
            self.references[step][kind] += 1


def password_flow(args, addresses, identifier):
    client = Client(args.host, args.port, addresses, args.timeout)
    try:
        answer, page, _ = client.request("GET", "/mot-de-passe-oublie")
        if answer.status != 200:
            raise RuntimeError(f"GET /mot-de-passe-oublie: {answer.status}")
        form = {"csrf": csrf_of(page), "identifier": identifier}
        first = client.request("POST", "/mot-de-passe-oublie", form)
        csrf = CSRF_FIELD.search(first[1])
        form = {
            "csrf": csrf.group(1).decode() if csrf else form["csrf"],
            "identifier": identifier,
            "channel": "mail",
        }
        second = client.request("POST", "/mot-de-passe-oublie/envoyer", form)
        return first, second
    finally:
        client.close()


def reminder_flow(args, addresses, email):
    client = Client(args.host, args.port, addresses, args.timeout)
    try:
        answer, page, _ = client.request("GET", "/identifiant-oublie")
        if answer.status != 200:
            raise RuntimeError(f"GET /identifiant-oublie: {answer.status}")
        return client.request("POST", "/identifiant-oublie", {"csrf": csrf_of(page), "email": email})
    finally:
        client.close()


def random_identifier(rng, taken):
    """alix. and 7 letters, like every seeded identifier, never a seeded one."""
    while True:
        tail = "".join(rng.choice(string.ascii_lowercase) for _ in range(7))
        candidate = f"alix.{tail}"
        if tail[:4] not in {"conn", "nome", "prov", "floo"} and candidate not in taken:
            taken.add(candidate)
            return candidate


def quantile(sorted_values, q):
    """Linear interpolation between closest ranks (as numpy's default)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def mann_whitney(a, b):
    """Mann-Whitney U of a against b: the two-sided p-value (normal approximation, tie
    correction), and P(a < b), ties counting half: the chance that one request of a is
    faster than one of b (0.5: one request tells nothing; 1 or 0: it tells every time)."""
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    n1, n2 = len(a), len(b)
    r1 = sum(r for r, (_, group) in zip(ranks, pooled) if group == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    faster = 1 - u1 / (n1 * n2)
    if sd == 0:
        return 1.0, faster
    z = (abs(u1 - mean) - 0.5) / sd
    return math.erfc(max(z, 0) / math.sqrt(2)), faster


def bootstrap_median_difference(a, b, rng, rounds=2000):
    """95 % percentile interval of median(a) - median(b)."""
    diffs = []
    for _ in range(rounds):
        ra = sorted(rng.choices(a, k=len(a)))
        rb = sorted(rng.choices(b, k=len(b)))
        diffs.append(quantile(ra, 0.5) - quantile(rb, 0.5))
    diffs.sort()
    return quantile(diffs, 0.025), quantile(diffs, 0.975)


def report(results, rng):
    all_same = True
    for step, kinds in ((IDENTIFIER_STEP, ID_KINDS), (MAIL_STEP, ID_KINDS), (REMINDER_STEP, MAIL_KINDS)):
        if step not in results.times:
            continue
        reference_kind = REFERENCE_KIND[step]
        base = sorted(results.times[step][reference_kind])
        base_median = quantile(base, 0.5)
        print()
        print(f"## {step}")
        print()
        print(
            "| kind | n | statuses | body bytes | median ms | p90 ms | p99 ms | mean ms "
            f"| median / {reference_kind} | median − {reference_kind} ms [95 % bootstrap] "
            f"| Mann-Whitney p | P(faster than {reference_kind}) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for kind in kinds:
            values = sorted(results.times[step][kind])
            if not values:
                continue
            statuses = ", ".join(f"{s}×{n}" for s, n in sorted(results.statuses[step][kind].items()))
            lengths = sorted(results.lengths[step][kind])
            length = str(lengths[0]) if len(lengths) == 1 else f"{lengths[0]}–{lengths[-1]}"
            median = quantile(values, 0.5)
            if kind == reference_kind:
                versus, interval, p, faster = "1.00", "", "", ""
            else:
                low, high = bootstrap_median_difference(values, base, rng)
                versus = f"{median / base_median:.2f}"
                interval = f"{median - base_median:+.3f} [{low:+.3f}, {high:+.3f}]"
                p, faster = mann_whitney(values, base)
                p, faster = f"{p:.2g}", f"{faster:.2f}"
            print(
                f"| {kind} | {len(values)} | {statuses} | {length} | {median:.3f} "
                f"| {quantile(values, 0.9):.3f} | {quantile(values, 0.99):.3f} "
                f"| {statistics.fmean(values):.3f} | {versus} | {interval} | {p} | {faster} |"
            )
        print()
        bodies = {kind: results.bodies[step][kind] for kind in kinds if results.bodies[step][kind]}
        distinct = set().union(*(set(c) for c in bodies.values()))
        if len(distinct) == 1:
            print(
                "bodies: identical for every kind once the CSRF field, the reference, the "
                "identifier typed and the phone's digits are replaced"
                f" ({len(results.samples[next(iter(distinct))])} bytes normalised)"
            )
        else:
            all_same = False
            print("bodies: DIFFER across kinds (normalised digests per kind):")
            for kind, counts in bodies.items():
                print(f"  {kind}: " + ", ".join(f"{d}×{n}" for d, n in counts.most_common()))
            first, *others = [d for d, _ in Counter(
                d for c in bodies.values() for d in c.elements()).most_common()]
            for other in others[:3]:
                print(f"  {first} vs {other}: " + first_difference(results.samples[first], results.samples[other]))
        headers = {kind: results.headers[step][kind] for kind in kinds if results.headers[step][kind]}
        distinct = set().union(*(set(c) for c in headers.values()))
        if len(distinct) == 1:
            print("headers: identical for every kind (Date and X-Request-Id aside)")
        else:
            all_same = False
            print("headers: DIFFER across kinds:")
            for kind, counts in headers.items():
                for shape, n in counts.items():
                    print(f"  {kind} ×{n}: {dict(shape)}")
        with_reference = {k: results.references[step][k] for k in kinds if results.times[step][k]}
        if any(with_reference.values()):
            print("13-digit reference shown: " + ", ".join(
                f"{k} {n}/{len(results.times[step][k])}" for k, n in with_reference.items()))
    return all_same


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"at byte {i}: {a[max(0, i - 60):i + 60]!r} vs {b[max(0, i - 60):i + 60]!r}"
    return f"one is a prefix of the other ({len(a)} vs {len(b)} bytes)"


def read_lines(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--requests", type=int, default=400, help="flows per kind")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted flows first")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--known", required=True, help="file: identifiers of known accounts")
    parser.add_argument("--no-email", required=True, help="file: active accounts without address")
    parser.add_argument("--provisional", required=True, help="file: provisional identifiers")
    parser.add_argument("--flood", required=True, help="one known identifier, asked every time")
    parser.add_argument("--domain", default="example.org", help="of the seeded addresses")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    known = read_lines(args.known)
    no_email = read_lines(args.no_email)
    provisional = read_lines(args.provisional)
    taken = set(known) | set(no_email) | set(provisional) | {args.flood}
    n = args.requests

    def pool(values):
        return [values[i % len(values)] for i in range(n)]

    identifiers = {
        "known": pool(known),
        "unknown": [random_identifier(rng, taken) for _ in range(n)],
        "provisional": pool(provisional),
        "no-email": pool(no_email),
        "known-flood": [args.flood] * n,
    }
    emails = {
        "confirmed": [f"{i}@{args.domain}" for i in pool(known)],
        "unknown": [f"{random_identifier(rng, taken)}@{args.domain}" for _ in range(n)],
        "provisional": [f"{i}@{args.domain}" for i in pool(provisional)],
        "confirmed-flood": [f"{args.flood}@{args.domain}"] * n,
    }
    for kind in identifiers:
        rng.shuffle(identifiers[kind])
    for kind in emails:
        rng.shuffle(emails[kind])
    flows = [("password", kind, value) for kind, values in identifiers.items() for value in values]
    flows += [("reminder", kind, value) for kind, values in emails.items() for value in values]
    rng.shuffle(flows)

    addresses = client_addresses()
    for _ in range(args.warmup):
        password_flow(args, addresses, random_identifier(rng, taken))
        reminder_flow(args, addresses, f"{random_identifier(rng, taken)}@{args.domain}")

    results = Results()
    began = time.monotonic()
    for flow, kind, value in flows:
        if flow == "password":
            (a1, b1, t1), (a2, b2, t2) = password_flow(args, addresses, value)
            results.add(IDENTIFIER_STEP, kind, a1, b1, t1, value)
            results.add(MAIL_STEP, kind, a2, b2, t2, value)
        else:
            answer, body, elapsed = reminder_flow(args, addresses, value)
            results.add(REMINDER_STEP, kind, answer, body, elapsed, value)
    seconds = time.monotonic() - began
    print(
        f"flows           {len(flows)} ({n} per kind, shuffled, seed {args.seed}) in {seconds:.1f} s, "
        "sequential, one new connection per flow (kept alive for its GET and POSTs)"
    )
    same = report(results, rng)
    print()
    print("screens and headers " + ("identical across kinds" if same else "DIFFER across kinds (see above)"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
