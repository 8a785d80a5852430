#!/usr/bin/env python3
"""List the crates statically linked into pam_tap.so, tapctl, tapd and the key helper.

Usage: crate-licenses.py WORKSPACE_DIR list      > crates.txt
       crate-licenses.py WORKSPACE_DIR notices   > crate-licenses.txt
       crate-licenses.py WORKSPACE_DIR spdx      > license expression

Walks `cargo metadata` from the shipped workspace members (pam_tap, tapctl,
tapd, tap-keyhelper)
along normal (not dev, not build) dependencies for x86_64 Linux.
  list:    one "name version license" line per crate, sorted;
  notices: each crate's license files (LICENSE*, COPYING*, NOTICE*, ...),
           with the Apache-2.0 text itself replaced by a pointer, since the
           package ships it once;
  spdx:    the project's license AND every distinct crate license, for
           the RPM License tag."""
import os
import re
import json
import subprocess
import sys

SHIPPED = {"pam_tap", "tapctl", "tapd", "tap-keyhelper"}


def main():
    ws = sys.argv[1]
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1",
         "--filter-platform", "x86_64-unknown-linux-gnu"], cwd=ws))
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    members = set(meta["workspace_members"])
    todo = [i for i in members if pkgs[i]["name"] in SHIPPED]
    seen = set()
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        for dep in nodes[i]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    crates = sorted((i for i in seen if i not in members),
                    key=lambda i: (pkgs[i]["name"], pkgs[i]["version"]))
    mode = sys.argv[2] if len(sys.argv) > 2 else "list"
    if mode == "list":
        for i in crates:
            p = pkgs[i]
            print(f"{p['name']} {p['version']} {spdx(p['license'])}")
    elif mode == "notices":
        notices(pkgs, crates)
    elif mode == "spdx":
        own = [spdx(pkgs[i]["license"]) for i in members if pkgs[i]["name"] in SHIPPED]
        terms = []
        for expr in own + [spdx(pkgs[i]["license"]) for i in crates]:
            for term in and_terms(expr):
                if term not in terms:
                    terms.append(term)
        print(" AND ".join(f"({t})" if " OR " in t and len(terms) > 1 else t
                           for t in terms[:1] + sorted(terms[1:])))
    else:
        sys.exit(f"unknown mode {mode}")


def spdx(lic):
    """Old crates write "MIT/Apache-2.0"; SPDX says "MIT OR Apache-2.0"."""
    if not lic:
        return "UNKNOWN"
    lic = re.sub(r"\s*/\s*", " OR ", lic.strip())
    if "(" not in lic and " AND " not in lic:
        # One spelling per choice: "Apache-2.0 OR MIT" is "MIT OR Apache-2.0".
        lic = " OR ".join(sorted(lic.split(" OR "), key=lambda x: (x != "MIT", x)))
    return lic


def and_terms(expr):
    """Top-level AND terms of an SPDX expression, outer parentheses removed:
    "(MIT OR Apache-2.0) AND Unicode-3.0" -> ["MIT OR Apache-2.0", "Unicode-3.0"]."""
    terms, depth, start = [], 0, 0
    for pos, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and expr.startswith(" AND ", pos):
            terms.append(expr[start:pos])
            start = pos + 5
    terms.append(expr[start:])
    out = []
    for t in (t.strip() for t in terms):
        while t.startswith("(") and t.endswith(")") and balanced(t[1:-1]):
            t = t[1:-1].strip()
        out.append(spdx(t) if "(" not in t else t)
    return out


def balanced(text):
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


# C code that crates compile in, with its own notices: crate -> (subdir,
# files or None for a note only, note).
BUNDLED = {
    "hidapi": ("etc/hidapi", ["LICENSE.txt", "LICENSE-bsd.txt"],
               "bundles the HIDAPI C library (hidraw backend), used here under its BSD-style license"),
    "libsqlite3-sys": (None, None, "bundles the SQLite C library, which is in the public domain"),
}

LICENSE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|COPYRIGHT|NOTICE|UNLICENSE|AUTHORS)", re.I)


def notices(pkgs, crates):
    print("Crates statically linked into pam_tap.so, tapctl, tapd and pam_tap-keyhelper,")
    print("with the license")
    print("and copyright notices each crate ships. The full text of the Apache")
    print("License 2.0 is shipped once: /usr/share/common-licenses/Apache-2.0 on")
    print("Debian, LICENSE-APACHE beside this file's RPM copy.\n")
    for i in crates:
        p = pkgs[i]
        print("=" * 78)
        print(f"{p['name']} {p['version']}  --  {spdx(p['license'])}")
        print("=" * 78)
        d = os.path.dirname(p["manifest_path"])
        files = sorted(f for f in os.listdir(d)
                       if LICENSE_FILE.match(f) and os.path.isfile(os.path.join(d, f)))
        if not files:
            print("(the crate ships no license file; its license is declared above)\n")
        if p["name"] in BUNDLED:
            sub, extra, note = BUNDLED[p["name"]]
            print(f"--- this crate {note}.")
            for f in extra or []:
                with open(os.path.join(d, sub, f), encoding="utf-8", errors="replace") as fh:
                    print(f"--- {sub}/{f}")
                    print(fh.read().rstrip() + "\n")
        for f in files:
            with open(os.path.join(d, f), encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            if "Apache License" in text and "Version 2.0" in text and "TERMS AND CONDITIONS" in text:
                print(f"--- {f}: the Apache License, Version 2.0 (full text shipped once)\n")
                continue
            print(f"--- {f}")
            print(text.rstrip() + "\n")


main()
