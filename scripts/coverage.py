#!/usr/bin/env python3
"""What default `fix` leaves behind: the share of services that end with `cap_drop: [ALL]`
and the share whose process runs as non-root, measured on a copy of a corpus.

A service "runs as non-root" when it ends with an explicit non-root `user:`, or when it sets
no `user:` and its image's profile says the image's own user is not root (class non-root).
Root-then-drop images (postgres, redis ...) start as root and do not count.

Usage: scripts/coverage.py [--bin target/release/compose-harden] [--args "..."] [CORPUS_DIR]
"""
import collections
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib

import yaml

args = sys.argv[1:]
binary = "target/release/compose-harden"
extra = []
while args[:1] in (["--bin"], ["--args"]):
    if args[0] == "--bin":
        binary = args[1]
    else:
        extra = shlex.split(args[1])
    args = args[2:]
here = os.path.dirname(os.path.abspath(__file__))
corpus = args[0] if args else os.path.join(here, "..", "..", "shared", "corpus", "public")
if not os.path.isdir(corpus):
    print(f"coverage: no corpus at {corpus}; skipped", file=sys.stderr)
    sys.exit(0)


def profiles():
    rows = []
    kdir = os.path.join(here, "..", "src", "knowledge")
    names = sorted(n for n in os.listdir(kdir) if n.endswith(".toml") and n != "signatures.toml")
    names.sort(key=lambda n: n != "images.toml")
    for n in names:
        with open(os.path.join(kdir, n), "rb") as f:
            rows += tomllib.load(f).get("image", [])
    return rows


ROWS = profiles()


def interpolate(s):
    """Compose's substitution with nothing set: `${X:-d}` and `${X-d}` give d, others ''."""
    return re.sub(r"\$\{[^}:-]*(?::?-([^}]*))?\}|\$[A-Za-z_][A-Za-z0-9_]*", lambda m: m.group(1) or "", s)


def normalise(image):
    name = interpolate(image).split("@")[0].lower()
    for reg in ("docker.io/", "index.docker.io/", "registry-1.docker.io/", "registry.hub.docker.com/"):
        if name.startswith(reg):
            name = name[len(reg):]
    if name.startswith("library/"):
        name = name[len("library/"):]
    slash = name.rfind("/") + 1
    colon = name.rfind(":")
    if colon >= slash:
        return name[:colon], name[colon + 1:]
    return name, None


def profile(image):
    repo, tag = normalise(image)
    for row in ROWS:
        if not any(fnmatch.fnmatchcase(repo, r) for r in row["repos"]):
            continue
        tags = row.get("tags", [])
        if tags and (tag is None or not any(fnmatch.fnmatchcase(tag, t) for t in tags)):
            continue
        return row
    return None


def non_root_user(user):
    uid = str(user).split(":")[0].strip()
    return uid not in ("", "root", "0") and "$" not in uid


def main():
    work = tempfile.mkdtemp(prefix="coverage-")
    try:
        dst = os.path.join(work, "c")
        shutil.copytree(corpus, dst)
        for root, dirs, files in os.walk(dst):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755 if n in dirs else 0o644)
        subprocess.run([binary, "fix", "--quiet", *extra, "--include", "*.yml", "--include", "*.yaml", dst],
                       capture_output=True)
        count = collections.Counter()
        unknown = collections.Counter()
        for root, _, files in os.walk(dst):
            for n in files:
                if not n.endswith((".yml", ".yaml")):
                    continue
                try:
                    with open(os.path.join(root, n), encoding="utf-8") as f:
                        doc = yaml.safe_load(f)
                except Exception:
                    continue
                services = doc.get("services") if isinstance(doc, dict) else None
                if not isinstance(services, dict):
                    continue
                for svc in services.values():
                    if not isinstance(svc, dict):
                        continue
                    count["services"] += 1
                    drop = svc.get("cap_drop") or []
                    if isinstance(drop, list) and any(str(c).upper() in ("ALL", "CAP_ALL") for c in drop):
                        count["cap_drop_all"] += 1
                    image = svc.get("image")
                    row = profile(image) if isinstance(image, str) and "build" not in svc else None
                    if isinstance(image, str) and "build" not in svc and row is None:
                        unknown[normalise(image)[0]] += 1
                    if "user" in svc and svc["user"] is not None:
                        count["non_root"] += non_root_user(svc["user"])
                    elif row is not None and row.get("class") == "non-root":
                        count["non_root"] += 1
        total = count["services"] or 1
        print(f"services: {count['services']}")
        print(f"cap_drop ALL: {count['cap_drop_all']} ({100 * count['cap_drop_all'] / total:.1f}%)")
        print(f"non-root: {count['non_root']} ({100 * count['non_root'] / total:.1f}%)")
        print("most common images without a profile:")
        for image, n in unknown.most_common(10):
            print(f"  {n:4d}  {image}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
