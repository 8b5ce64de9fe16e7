"""What deploy/smoke.sh checks through Clef's pages and endpoints, as a parent
and a relying party meet them. Needs Python 3 with `requests`.

  smoke.py login PAGES TOKEN CLIENT_ID SECRET
      A browser signs in as the demo parent through the pages of PAGES; the
      code is exchanged at TOKEN (another instance, or the same); the ID
      token's key must be published in TOKEN's JWKS, its nonce and audience
      must be the request's, and it must list both demo children; UserInfo
      answers with the access token. (Strict validation of tokens is the
      openid-client suite's job, in tests/.)
  smoke.py mail BASE MAILDEV
      « Identifiant oublié » for the demo parent's address through BASE; the
      reminder must arrive in the mail catcher's API at MAILDEV.
"""

import base64
import json
import re
import sys
import time
import urllib.parse

import requests

REDIRECT_URI = "http://127.0.0.1:9000/callback"
PARENT, PASSWORD, EMAIL = "parent.martin", "Demo2026clef", "claire.martin@example.org"


def fail(message):
    sys.exit(f"smoke.py: {message}")


def b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def csrf_of(page):
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    if not found:
        fail("no CSRF field on the page")
    return found.group(1)


def login(pages, token, client_id, secret):
    browser = requests.Session()
    page = browser.get(
        f"{pages}/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email children",
            "state": "smoke-state",
            "nonce": "smoke-nonce",
        },
    )
    if page.status_code != 200:
        fail(f"/authorize answered {page.status_code}")
    # The login form, with the pending request's hidden fields.
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    if not action:
        fail("no login form on the authorization page")
    form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    form.update(csrf=csrf_of(page.text), identifier=PARENT, password=PASSWORD)
    answer = browser.post(urllib.parse.urljoin(page.url, action.group(1)), data=form, allow_redirects=False)
    while answer.status_code in (302, 303) and not answer.headers["location"].startswith(REDIRECT_URI):
        answer = browser.get(urllib.parse.urljoin(pages, answer.headers["location"]), allow_redirects=False)
    location = answer.headers.get("location", "")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    if "code" not in query or query.get("state") != ["smoke-state"]:
        fail(f"the login did not come back with a code: {answer.status_code} {location[:120]}")
    tokens = requests.post(
        f"{token}/token",
        auth=(client_id, secret),
        data={"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT_URI},
    )
    if tokens.status_code != 200:
        fail(f"/token answered {tokens.status_code}: {tokens.text[:200]}")
    id_token = tokens.json()["id_token"]
    header, claims = b64json(id_token.split(".")[0]), b64json(id_token.split(".")[1])
    kids = [key["kid"] for key in requests.get(f"{token}/jwks.json").json()["keys"]]
    if header.get("kid") not in kids:
        fail("the ID token's kid is not in the other instance's JWKS")
    if claims.get("nonce") != "smoke-nonce" or claims.get("aud") != client_id:
        fail(f"unexpected ID token claims: {claims}")
    children = sorted(child.get("given_name") for child in claims.get("children", []))
    if children != ["Hugo", "Léa"]:
        fail(f"the ID token's children are {children}")
    info = requests.get(f"{token}/userinfo", headers={"Authorization": "Bearer " + tokens.json()["access_token"]})
    if info.status_code != 200 or info.json().get("sub") != claims["sub"]:
        fail(f"/userinfo answered {info.status_code}")
    print(f"login on {pages}, code exchanged on {token}: ID token lists {', '.join(children)}")


def mail(base, maildev):
    browser = requests.Session()
    page = browser.get(f"{base}/identifiant-oublie")
    sent = browser.post(f"{base}/identifiant-oublie", data={"csrf": csrf_of(page.text), "email": EMAIL})
    if sent.status_code != 200:
        fail(f"/identifiant-oublie answered {sent.status_code}")
    for _ in range(30):
        for message in requests.get(f"{maildev}/email").json():
            if any(to["address"] == EMAIL for to in message["to"]) and PARENT in (message.get("text") or ""):
                print(f"the mail catcher received « {message['subject']} » for {EMAIL}")
                return
        time.sleep(1)
    fail("no identifier reminder reached the mail catcher")


if __name__ == "__main__":
    commands = {"login": (login, 4), "mail": (mail, 2)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or len(sys.argv) - 2 != commands[sys.argv[1]][1]:
        fail("usage: smoke.py login PAGES TOKEN CLIENT_ID SECRET | smoke.py mail BASE MAILDEV")
    function, _ = commands[sys.argv[1]]
    function(*sys.argv[2:])
