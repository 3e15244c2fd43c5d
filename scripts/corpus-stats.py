#!/usr/bin/env python3
"""Per-service outcome of `compose-harden` over a corpus of compose files.

For every service: already hardened (no finding), hardened by verified fixes (every
finding has a verified fix), hardened only with --unverified (some fix is unverified,
none is missing), or not hardened (some finding has no fix), with the reasons, and the
most common images the knowledge base does not know.

Usage: scripts/corpus-stats.py [--bin target/release/compose-harden] [CORPUS_DIR]
"""
import collections
import json
import os
import subprocess
import sys

args = sys.argv[1:]
binary = "target/release/compose-harden"
if args[:1] == ["--bin"]:
    binary, args = args[1], args[2:]
corpus = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus", "public")
if not os.path.isdir(corpus):
    print(f"corpus-stats: no corpus at {corpus}; skipped", file=sys.stderr)
    sys.exit(0)

out = subprocess.run(
    [binary, "check", "--format", "json", "--quiet", "--include", "*.yml", "--include", "*.yaml", corpus],
    capture_output=True, text=True,
).stdout
report = json.loads(out)

# Services per file come from the findings; services without findings are counted from
# a second pass that lists every service (check reports nothing for them).
outcome = collections.Counter()
caps_nnp = collections.Counter()
reasons = collections.Counter()
unknown = collections.Counter()
services_with_findings = 0
for f in report["files"]:
    per = collections.defaultdict(list)
    for d in f["findings"]:
        per[d["service"]].append(d)
    for svc, ds in per.items():
        services_with_findings += 1
        # Capabilities and no-new-privileges alone (the user: question aside).
        cn = [d for d in ds if d["rule"] in ("CH002", "CH003")]
        if any(d["fix"] is None for d in cn):
            caps_nnp["not hardened"] += 1
        elif all(d["fix"]["applicability"] == "verified" for d in cn):
            caps_nnp["verified"] += 1
        else:
            caps_nnp["unverified"] += 1
        if any(d["fix"] is None for d in ds):
            outcome["not hardened"] += 1
            for d in ds:
                if d["fix"] is None:
                    reasons[f'{d["rule"]}: {d["reason"].split(":")[0][:70]}'] += 1
        elif all(d["fix"]["applicability"] == "verified" for d in ds):
            outcome["hardened by verified fixes"] += 1
        else:
            outcome["needs --unverified"] += 1
            for d in ds:
                if d["fix"]["applicability"] == "unverified":
                    r = d["reason"]
                    if r.startswith("nothing is known about "):
                        unknown[r.removeprefix("nothing is known about ").split(";")[0]] += 1
                    reasons[f'{d["rule"]} unverified: {r.split(";")[0][:70]}'] += 1

# Count all services (including those with no findings) with PyYAML-free means: the JSON
# has no per-service list, so count services that `fix --diff` leaves alone separately.
try:
    import yaml  # noqa: F401
    total = 0
    class L(yaml.SafeLoader):
        pass
    L.add_multi_constructor("!", lambda l, s, n: None)
    for p in [x["path"] for x in report["files"]]:
        try:
            doc = yaml.load(open(p, "rb"), Loader=L)
        except Exception:  # PyYAML rejects a few files our parser reads (redefined anchors)
            continue
        total += len(doc.get("services") or {})
    outcome["already hardened (no finding)"] = total - services_with_findings
except Exception as e:  # PyYAML missing or a file it cannot read
    total = services_with_findings
    print(f"(services without findings not counted: {e})")

print(f"files: {len(report['files'])} checked, {len(report['errors'])} refused")
print(f"services: {total}")
for k in ["already hardened (no finding)", "hardened by verified fixes", "needs --unverified", "not hardened"]:
    v = outcome[k]
    print(f"  {k:32s} {v:5d} ({100.0 * v / max(total, 1):.1f}%)")
free = total - services_with_findings
print("capabilities + no-new-privileges only (CH002, CH003):")
v = caps_nnp["verified"] + free
print(f"  done by verified fixes (or already) {v:5d} ({100.0 * v / max(total, 1):.1f}%)")
for k in ["unverified", "not hardened"]:
    print(f"  {k:32s} {caps_nnp[k]:5d} ({100.0 * caps_nnp[k] / max(total, 1):.1f}%)")
print("reasons (not hardened / unverified), most common:")
for r, n in reasons.most_common(15):
    print(f"  {n:5d}  {r}")
print("most common images the knowledge base does not know:")
for r, n in unknown.most_common(10):
    print(f"  {n:5d}  {r}")
