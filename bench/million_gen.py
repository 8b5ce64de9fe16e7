#!/usr/bin/env python3
"""School files for bench/million.sh (Python standard library only).

Writes one pupil file per establishment, as a school's spreadsheet exports it (`;`, French
headers, jj/mm/aaaa, CRLF, the headers of benches/provisioning.rs): every pupil with two
guardians, each guardian with their own address and mobile number, so every row makes three
accounts. Names are drawn from a few dozen given names and a few thousand generated family
names, so identifiers collide as they do in real schools (`lea.martin`, `lea.martin1`…) and
the identifier counters fill up as they would.

    million_gen.py --out DIR --first 1 --establishments 30 --pupils 11112 [--tag a]

writes DIR/<UAI>.csv for the UAIs 0000001A… (see uai() below), and prints the UAIs, one a
line. --tag makes the pupil references (N° élève) and addresses of one run distinct from
another's (the import files of the comparison must be new pupils, not an update).
"""

import argparse
import os
import random

GIVEN = [
    "Léa", "Hugo", "Zoé", "Noah", "Inès", "Jules", "Chloé", "Lucas", "Aïcha", "Théo", "Maëlys",
    "Éloïse", "Camille", "Louis", "Manon", "Nathan", "Emma", "Adam", "Jade", "Gabriel",
    "Louise", "Raphaël", "Alice", "Arthur", "Lina", "Mohamed", "Rose", "Sacha", "Anna", "Tom",
    "Mila", "Ethan", "Ambre", "Paul", "Julia", "Yanis", "Lou", "Nolan", "Sarah", "Mathis",
]
PARENT_GIVEN = [
    "Marc", "Sophie", "Nathalie", "Stéphane", "Isabelle", "Karim", "Céline", "David",
    "Sandrine", "Frédéric", "Valérie", "Olivier", "Fatima", "Laurent", "Véronique", "Éric",
]
SYLLABLES = [
    "mar", "tin", "ber", "nard", "du", "bois", "le", "fè", "vre", "mo", "reau", "lau", "rent",
    "gi", "rard", "fau", "re", "ca", "ron", "bon", "net", "mer", "cier", "fon", "tai", "ne",
    "che", "val", "lier", "roux", "blanc", "gar", "nier", "rous", "seau", "pe", "tit", "vin",
]


def family_names(count, rng):
    names = set()
    while len(names) < count:
        parts = rng.randint(2, 3)
        name = "".join(rng.choice(SYLLABLES) for _ in range(parts))
        names.add(name.capitalize())
    return sorted(names)


def uai(n):
    """0000001A, 0000002A…: 7 digits and a letter (Clef checks only the form)."""
    return f"{n:07d}A"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--first", type=int, default=1, help="number of the first UAI")
    parser.add_argument("--establishments", type=int, default=30)
    parser.add_argument("--pupils", type=int, default=11112, help="pupils per establishment")
    parser.add_argument("--tag", default="a", help="distinguishes the pupils of one run")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    rng = random.Random(f"{args.seed}:{args.tag}")
    families = family_names(3000, rng)
    os.makedirs(args.out, exist_ok=True)
    header = (
        "N° élève;Nom;Prénom;Date de naissance;Classe;"
        "Nom responsable 1;Prénom responsable 1;Courriel responsable 1;Téléphone responsable 1;"
        "Nom responsable 2;Prénom responsable 2;Courriel responsable 2;Téléphone responsable 2\r\n"
    )
    for e in range(args.first, args.first + args.establishments):
        code = uai(e)
        rows = [header]
        for i in range(args.pupils):
            family = rng.choice(families)
            other = rng.choice(families)
            given = rng.choice(GIVEN)
            born = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2008, 2015)}"
            level = 6 - i % 4
            klass = f"{level}e {i // 4 % 9 + 1}"
            ref = f"{args.tag}{e:05d}{i:07d}"
            rows.append(
                f"{ref};{family};{given};{born};{klass};"
                f"{family};{rng.choice(PARENT_GIVEN)};r1.{ref}@example.org;06{rng.randrange(10**8):08d};"
                f"{other};{rng.choice(PARENT_GIVEN)};r2.{ref}@example.org;07{rng.randrange(10**8):08d}\r\n"
            )
        with open(os.path.join(args.out, f"{code}.csv"), "w", encoding="utf-8", newline="") as f:
            f.write("".join(rows))
        print(code)


if __name__ == "__main__":
    main()
