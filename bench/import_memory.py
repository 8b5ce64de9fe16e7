#!/usr/bin/env python3
"""Back-office import driver for bench/import-memory.sh (Python standard library only).

Signs a staff member in through the pages, writes a school file of PUPILS rows as a
spreadsheet exports it (`;`, French headers, dd/mm/yyyy, two guardians), uploads it for a
preview (multipart, as the browser sends it), applies the preview and follows the progress
page until the report comes. The server's VmRSS is sampled every 20 ms throughout; VmHWM is
read after each step.

Prints one line of JSON: the file's size, each step's seconds and status, the peaks.
"""

import argparse
import http.client
import json
import re
import threading
import time
import urllib.parse
import uuid

CSRF_FIELD = re.compile(rb'name="csrf" value="([^"]+)"')
DRAFT_FIELD = re.compile(rb'name="draft" value="([^"]+)"')

FAMILY = ["Martin", "Bernard", "Dubois", "Lefèvre", "N'Diaye", "Moreau", "Laurent", "Girard", "Ça", "Faure"]
GIVEN = ["Léa", "Hugo", "Chloé", "Noé", "Inès", "Lucas", "Zoé", "Gabriel", "Anaïs", "Éloïse", "Jules"]


def school_file(pupils):
    lines = [
        "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;"
        "Courriel responsable 1;Téléphone responsable 1;Nom responsable 2;Prénom responsable 2;"
        "Courriel responsable 2;Téléphone responsable 2"
    ]
    for i in range(pupils):
        family = FAMILY[i % len(FAMILY)]
        given = GIVEN[(i // len(FAMILY)) % len(GIVEN)]
        lines.append(
            f"{i:08};{family};{given};{i % 28 + 1:02}/{i % 12 + 1:02}/{2008 + i % 8};"
            f"{3 + i % 4}e {i % 9 + 1};{family};Marc;parent{i}@example.org;06{i % 100_000_000:08};"
            f"Durand;Sophie;sophie{i}@example.org;07{i % 100_000_000:08}"
        )
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Browser:
    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.cookies[key] = val
        conn.close()
        return answer.status, answer.getheader("Location"), data

    def form(self, path, fields):
        body = urllib.parse.urlencode(fields)
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--uai", required=True)
    parser.add_argument("--identifier", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--pupils", type=int, default=62_000)
    args = parser.parse_args()

    peak = {"kib": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak["kib"] = max(peak["kib"], status_kib(args.pid, "VmRSS"))
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    result = {"pupils": args.pupils}
    browser = Browser(args.port)

    status, _, page = browser.request("GET", "/login")
    csrf = CSRF_FIELD.search(page).group(1).decode()
    status, _, _ = browser.form("/login", {"csrf": csrf, "identifier": args.identifier, "password": args.password})
    assert status in (302, 303), f"staff sign-in: {status}"

    file = school_file(args.pupils)
    result["file_bytes"] = len(file)
    status, _, page = browser.request("GET", f"/etablissement/{args.uai}/import")
    assert status == 200, f"import page: {status}"
    csrf = CSRF_FIELD.search(page).group(1).decode()
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="eleves.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n"
    ).encode() + file + f"\r\n--{boundary}--\r\n".encode()
    before = status_kib(args.pid, "VmRSS")
    started = time.monotonic()
    status, _, page = browser.request(
        "POST", f"/etablissement/{args.uai}/import", body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    result["preview"] = {"status": status, "seconds": round(time.monotonic() - started, 2),
                         "page_bytes": len(page), "rss_before_kib": before,
                         "hwm_kib": status_kib(args.pid, "VmHWM")}
    assert status == 200, f"preview: {status} {page[:2000]!r}"
    draft = DRAFT_FIELD.search(page).group(1).decode()
    csrf = CSRF_FIELD.search(page).group(1).decode()

    started = time.monotonic()
    status, location, _ = browser.form(f"/etablissement/{args.uai}/import/appliquer",
                                       {"csrf": csrf, "draft": draft})
    assert status in (302, 303), f"apply: {status}"
    polls = 0
    while True:
        status, _, page = browser.request("GET", location)
        polls += 1
        if b'http-equiv="refresh"' not in page:
            break
        time.sleep(1)
    result["apply"] = {"status": status, "seconds": round(time.monotonic() - started, 2),
                       "progress_pages": polls, "report_bytes": len(page),
                       "hwm_kib": status_kib(args.pid, "VmHWM")}
    stop.set()
    result["peak_sampled_rss_kib"] = peak["kib"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
