#!/usr/bin/env bash
# Speed benchmark for compose-harden (whole-process timings; never run from the tests).
#
#   scripts/bench.sh                 # compose-harden only
#   COMPOSE_LINT=1 scripts/bench.sh  # also time compose-lint 0.36.2 `check` and print the ratios
#
# What it does:
#   1. cargo build --release (a no-op when up to date);
#   2. generates a ~5.4 MB / 2,000-service compose file and a 10x smaller one (200 services)
#      with scripts/gen_large_compose.py into a temp dir;
#   3. times `compose-harden fix --diff` (and `check --quiet`, parse + rules without the diff)
#      over (a) every file of the public corpus in ONE run, (b) the large file, (c) the small one:
#      median wall time of RUNS runs (hyperfine when installed, else a /usr/bin/time loop),
#      MB/s, CPU utilisation = (user+sys)/wall (2.0 = both cores busy), peak RSS from
#      `/usr/bin/time -v` and its ratio to the input size, and the large/small time ratio.
#
# Environment:
#   RUNS=5            counted runs per command (after one warm-up)
#   RSS_RUNS=5        runs under /usr/bin/time -v per command for peak memory
#   CORPUS=DIR        default: ../shared/corpus/public next to the repo (skipped when absent)
#   SERVICES=2000     services in the large file (the small one gets SERVICES/10)
#   COMPOSE_LINT=1    install compose-lint 0.36.2 into a venv (CL_VENV, default /tmp/cl) and time
#                     its `check` on the same inputs (CL_RUNS runs, default 3, no warm-up)
#   COMPOSE_LINT_FIX=1  also time compose-lint `fix` (dry run) on the large file once (~150 s)
#   BARE_PARSE=1      build a tiny granit-parser event loop (same version as Cargo.lock, in
#                     BARE_DIR, default /tmp/compose-harden-bareparse) and time a bare parse of
#                     the same bytes (the corpus as the same explicit list, and the big file):
#                     the floor the "N x a bare parse" goals refer to
#   CALLGRIND=0       skip the instruction counts. By default, when valgrind is installed, each
#                     command also runs once under callgrind (instruction counts repeat whatever
#                     the machine's load): `check` of a 20-line file (start-up), and fix --diff /
#                     check / bare parse on the corpus and the big file
#   BIN=PATH          measure this compose-harden binary instead of building target/release
#   NO_HYPERFINE=1    use the /usr/bin/time loop even when hyperfine is installed
#   KEEP=1            keep the temp dir (generated files, hyperfine JSON)
#
# Corpus files are read in place; nothing is copied into the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${RUNS:-5}"
RSS_RUNS="${RSS_RUNS:-5}"
SERVICES="${SERVICES:-2000}"
CORPUS="${CORPUS:-$ROOT/../shared/corpus/public}"
CL_VENV="${CL_VENV:-/tmp/cl}"
CL_RUNS="${CL_RUNS:-3}"
BARE_DIR="${BARE_DIR:-/tmp/compose-harden-bareparse}"
BIN="${BIN:-}"

if [[ ! -x /usr/bin/time ]]; then
    echo "bench: /usr/bin/time (GNU time) is missing; install it with: apt-get install -y time" >&2
    exit 2
fi
if ! command -v python3 >/dev/null; then
    echo "bench: python3 is needed (file generator, statistics)" >&2
    exit 2
fi
HAVE_HYPERFINE=0
if [[ "${NO_HYPERFINE:-0}" != 1 ]] && command -v hyperfine >/dev/null; then
    HAVE_HYPERFINE=1
else
    echo "bench: hyperfine not found, using a /usr/bin/time loop (install: apt-get install -y hyperfine)" >&2
fi

if [[ -z "$BIN" ]]; then
    echo "== build" >&2
    (cd "$ROOT" && cargo build --release --quiet)
    BIN="$ROOT/target/release/compose-harden"
fi

TMP="$(mktemp -d /tmp/compose-harden-bench.XXXXXX)"
if [[ "${KEEP:-0}" == 1 ]]; then
    echo "bench: keeping $TMP" >&2
else
    trap 'rm -rf "$TMP"' EXIT
fi
RESULTS="$TMP/results.tsv"
: >"$RESULTS"

echo "== generate" >&2
BIG="$TMP/compose.big.yaml"
SMALL="$TMP/compose.small.yaml"
python3 "$ROOT/scripts/gen_large_compose.py" "$SERVICES" "$BIG"
python3 "$ROOT/scripts/gen_large_compose.py" "$((SERVICES / 10))" "$SMALL"

# Corpus: every file under CORPUS, passed explicitly (the corpus names files
# `<path>__compose.yaml`, which directory discovery would not pick up), in one process.
CORPUS_LIST="$TMP/corpus.list"
if [[ -d "$CORPUS" ]]; then
    CORPUS="$(cd "$CORPUS" && pwd)"
    (cd "$CORPUS" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$CORPUS_LIST"
    echo "bench: corpus $CORPUS: $(wc -l <"$CORPUS_LIST") files" >&2
else
    echo "bench: corpus not found at $CORPUS; skipping the corpus run" >&2
    CORPUS=""
fi

bytes_of() { # total bytes of the files named on stdin (relative to $1)
    (cd "$1" && tr '\n' '\0' | xargs -0 stat -c %s | awk '{s+=$1} END {print s+0}')
}

# measure LABEL INPUT_BYTES RUNS WARMUP DIR CMD...
# Runs CMD (in DIR) and appends one TSV row to $RESULTS:
#   label bytes median_s min_s max_s cpu_util peak_rss_kib cpu_s peak_rss_max_kib
measure() {
    local label="$1" bytes="$2" runs="$3" warmup="$4" dir="$5"
    shift 5
    local json="$TMP/$(echo "$label" | tr -c 'A-Za-z0-9' '_').json"
    echo "== $label ($runs runs)" >&2
    if [[ "$HAVE_HYPERFINE" == 1 ]]; then
        local cmd
        cmd="$(printf '%q ' "$@")"
        (cd "$dir" && hyperfine --style basic -i --warmup "$warmup" --runs "$runs" \
            --export-json "$json" -n "$label" "$cmd" >&2)
    else
        local i
        : >"$TMP/loop.txt"
        for ((i = 0; i < warmup; i++)); do (cd "$dir" && "$@" >/dev/null 2>&1) || true; done
        for ((i = 0; i < runs; i++)); do
            (cd "$dir" && /usr/bin/time -f '%e %U %S' -a -o "$TMP/loop.txt" "$@" >/dev/null 2>&1) || true
        done
        python3 - "$TMP/loop.txt" "$json" <<'PY'
import json, sys
rows = [list(map(float, l.split()[-3:])) for l in open(sys.argv[1]) if l.strip() and l.split()[0][0].isdigit()]
n = len(rows)
json.dump({"results": [{"times": [r[0] for r in rows],
                        "user": sum(r[1] for r in rows) / n,
                        "system": sum(r[2] for r in rows) / n}]}, open(sys.argv[2], "w"))
PY
    fi
    # Peak memory: RSS_RUNS more runs under /usr/bin/time -v (it varies by a few percent
    # from run to run, with how much of the program the kernel maps): median and largest.
    local i rss=""
    for ((i = 0; i < RSS_RUNS; i++)); do
        (cd "$dir" && /usr/bin/time -v -o "$TMP/timev.txt" "$@" >/dev/null 2>&1) || true
        rss+="$(awk -F': *' '/Maximum resident set size/ {print $2}' "$TMP/timev.txt") "
    done
    python3 - "$json" "$label" "$bytes" "$rss" >>"$RESULTS" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"][0]
t = sorted(r["times"])
med = statistics.median(t)
mean = sum(t) / len(t)
cpu = (r["user"] + r["system"]) / mean if mean > 0 else 0.0
rss = sorted(int(x) for x in sys.argv[4].split())
print("\t".join([sys.argv[2], sys.argv[3], f"{med:.4f}", f"{t[0]:.4f}", f"{t[-1]:.4f}", f"{cpu:.2f}",
                 str(int(statistics.median(rss))) if rss else "", f"{r['user'] + r['system']:.4f}",
                 str(rss[-1]) if rss else ""]))
PY
}

BIG_BYTES="$(stat -c %s "$BIG")"
SMALL_BYTES="$(stat -c %s "$SMALL")"
if [[ -n "$CORPUS" ]]; then
    CORPUS_BYTES="$(bytes_of "$CORPUS" <"$CORPUS_LIST")"
    mapfile -t CORPUS_FILES <"$CORPUS_LIST"
fi

# --- compose-harden ---------------------------------------------------------------
if [[ -n "$CORPUS" ]]; then
    measure "ch fix --diff corpus" "$CORPUS_BYTES" "$RUNS" 1 "$CORPUS" "$BIN" fix --diff "${CORPUS_FILES[@]}"
    measure "ch check corpus" "$CORPUS_BYTES" "$RUNS" 1 "$CORPUS" "$BIN" check --quiet "${CORPUS_FILES[@]}"
fi
measure "ch fix --diff big" "$BIG_BYTES" "$RUNS" 1 "$TMP" "$BIN" fix --diff "$BIG"
measure "ch check big" "$BIG_BYTES" "$RUNS" 1 "$TMP" "$BIN" check --quiet "$BIG"
measure "ch fix --diff small" "$SMALL_BYTES" "$RUNS" 1 "$TMP" "$BIN" fix --diff "$SMALL"
measure "ch check small" "$SMALL_BYTES" "$RUNS" 1 "$TMP" "$BIN" check --quiet "$SMALL"

# --- bare parse (optional) ----------------------------------------------------------
if [[ "${BARE_PARSE:-0}" == 1 ]]; then
    GRANIT_VERSION="$(awk '/^name = "granit-parser"/ {getline; gsub(/[^0-9.]/, ""); print; exit}' "$ROOT/Cargo.lock")"
    mkdir -p "$BARE_DIR/src"
    cat >"$BARE_DIR/Cargo.toml" <<EOF
[package]
name = "bareparse"
version = "0.0.0"
edition = "2024"
[dependencies]
granit-parser = "=$GRANIT_VERSION"
[workspace]
EOF
    # Same parser options as src/yaml.rs; only counts events.
    cat >"$BARE_DIR/src/main.rs" <<'EOF'
use granit_parser::{Parser, options};
fn main() {
    let mut n = 0usize;
    for p in std::env::args().skip(1) {
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        let opts = options! {
            emit_anchor_events: true,
            block_scalar_eof_without_line_feed: true,
            max_buffered_comment_events: text.len() / 2 + 96,
        };
        for item in Parser::new_from_str_with_options(&text, opts) {
            match item {
                Ok(_) => n += 1,
                Err(_) => break,
            }
        }
    }
    println!("{n}");
}
EOF
    echo "== build bare granit-parser $GRANIT_VERSION loop in $BARE_DIR" >&2
    (cd "$BARE_DIR" && cargo build --release --quiet)
    BARE="$BARE_DIR/target/release/bareparse"
    if [[ -n "$CORPUS" ]]; then
        measure "bare parse corpus" "$CORPUS_BYTES" "$RUNS" 1 "$CORPUS" "$BARE" "${CORPUS_FILES[@]}"
    fi
    measure "bare parse big" "$BIG_BYTES" "$RUNS" 1 "$TMP" "$BARE" "$BIG"
fi

# --- instruction counts (callgrind) -----------------------------------------------------
INSTR="$TMP/instructions.tsv"
: >"$INSTR"
# count LABEL DIR CMD...: one run under callgrind; appends "label<TAB>instructions".
count() {
    local label="$1" dir="$2"
    shift 2
    echo "== callgrind: $label" >&2
    (cd "$dir" && valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>"$TMP/cg.txt" >/dev/null) || true
    printf '%s\t%s\n' "$label" "$(awk '/Collected :/ {print $NF}' "$TMP/cg.txt")" >>"$INSTR"
}
if [[ "${CALLGRIND:-1}" == 1 ]] && command -v valgrind >/dev/null; then
    TWENTY="$TMP/compose.20.yaml"
    printf '%s\n' "services:" "  db:" "    image: postgres:16" "    environment:" \
        "      POSTGRES_PASSWORD: example" "    volumes:" "      - db:/var/lib/postgresql/data" \
        "  cache:" "    image: redis:7-alpine" "    restart: unless-stopped" "  web:" \
        "    image: nginx:1.27" "    ports:" '      - "8080:80"' "    depends_on:" "      - db" \
        "      - cache" "volumes:" "  db: {}" "# end" >"$TWENTY"
    count "ch check 20 lines" "$TMP" "$BIN" check "$TWENTY"
    if [[ -n "$CORPUS" ]]; then
        count "ch fix --diff corpus" "$CORPUS" "$BIN" fix --diff "${CORPUS_FILES[@]}"
        count "ch check corpus" "$CORPUS" "$BIN" check --quiet "${CORPUS_FILES[@]}"
        if [[ -n "${BARE:-}" ]]; then count "bare parse corpus" "$CORPUS" "$BARE" "${CORPUS_FILES[@]}"; fi
    fi
    count "ch fix --diff big" "$TMP" "$BIN" fix --diff "$BIG"
    count "ch check big" "$TMP" "$BIN" check --quiet "$BIG"
    if [[ -n "${BARE:-}" ]]; then count "bare parse big" "$TMP" "$BARE" "$BIG"; fi
elif [[ "${CALLGRIND:-1}" == 1 ]]; then
    echo "bench: valgrind not found, no instruction counts (install: apt-get install -y valgrind)" >&2
fi

# --- compose-lint (optional) --------------------------------------------------------
if [[ "${COMPOSE_LINT:-0}" == 1 ]]; then
    if [[ ! -x "$CL_VENV/bin/compose-lint" ]]; then
        echo "== install compose-lint 0.36.2 into $CL_VENV" >&2
        python3 -m venv "$CL_VENV"
        "$CL_VENV/bin/pip" install --quiet compose-lint==0.36.2
    fi
    CL="$CL_VENV/bin/compose-lint"
    echo "bench: $("$CL" --version 2>&1)" >&2
    if [[ -n "$CORPUS" ]]; then
        measure "compose-lint check corpus" "$CORPUS_BYTES" "$CL_RUNS" 0 "$CORPUS" "$CL" check "${CORPUS_FILES[@]}"
    fi
    measure "compose-lint check big" "$BIG_BYTES" "$CL_RUNS" 0 "$TMP" "$CL" check "$BIG"
    measure "compose-lint check small" "$SMALL_BYTES" "$CL_RUNS" 0 "$TMP" "$CL" check "$SMALL"
    if [[ "${COMPOSE_LINT_FIX:-0}" == 1 ]]; then
        measure "compose-lint fix big" "$BIG_BYTES" 1 0 "$TMP" "$CL" fix "$BIG"
    fi
fi

# --- report -------------------------------------------------------------------------
python3 - "$RESULTS" "$RUNS" "$RSS_RUNS" "$INSTR" <<'PY'
import sys
RSS_RUNS = sys.argv[3]
instr = {}
for line in open(sys.argv[4]):
    label, n = line.rstrip("\n").split("\t")
    if n:
        instr[label] = int(n)
rows = {}
order = []
for line in open(sys.argv[1]):
    label, b, med, lo, hi, cpu, rss, cpus, rss_max = line.rstrip("\n").split("\t")
    rows[label] = dict(bytes=int(b), med=float(med), lo=float(lo), hi=float(hi), cpu=float(cpu), cpus=float(cpus),
                       rss=int(rss) * 1024 if rss else 0, rss_max=int(rss_max) * 1024 if rss_max else 0)
    order.append(label)

print()
print(f"{'command':28} {'input MB':>9} {'median s':>9} {'min-max s':>15} {'MB/s':>7} {'CPU':>5} {'CPU s':>7} {'peak MiB':>9} {'RSS/input':>9} {'M instr':>8}")
for k in order:
    r = rows[k]
    mbs = r["bytes"] / 1e6 / r["med"] if r["med"] > 0 else float("inf")
    print(f"{k:28} {r['bytes']/1e6:9.2f} {r['med']:9.3f} {r['lo']:7.3f}-{r['hi']:<7.3f} {mbs:7.1f} "
          f"{r['cpu']:5.2f} {r['cpus']:7.3f} {r['rss']/2**20:9.1f} {r['rss']/r['bytes']:8.1f}x "
          f"{instr[k] / 1e6 if k in instr else float('nan'):8.2f}")
for k in instr:
    if k not in rows:
        print(f"{k:28} {'':9} {'':9} {'':15} {'':7} {'':5} {'':7} {'':9} {'':9} {instr[k] / 1e6:8.2f}")
print("M instr = millions of instructions executed (callgrind, one run, all threads).")
print("CPU = (user+sys)/wall: 2.00 means both cores busy for the whole run; CPU s = mean user+sys seconds.")
try:
    load = open("/proc/loadavg").read().split()[0]
    print(f"load average at the end: {load} (other processes on this machine make wall times and CPU noisy)")
except OSError:
    pass

def ratio(a, b):
    if a in rows and b in rows and rows[b]["med"] > 0:
        return rows[a]["med"] / rows[b]["med"]
    return None

print()
print("Goals (issue): ")
def goal(text, value, target, ok):
    if value is None:
        return
    print(f"  [{'ok ' if ok(value) else 'MISS'}] {text}: {value:.2f} (goal {target})")

big, small = rows.get("ch fix --diff big"), rows.get("ch fix --diff small")
if big and small:
    size_ratio = big["bytes"] / small["bytes"]
    t = big["med"] / small["med"]
    goal(f"linearity: time(big)/time(small) for {size_ratio:.2f}x the input", t,
         f"<= {1.1 * size_ratio:.2f}, i.e. 11x per 10x", lambda v: v <= 1.1 * size_ratio)
    c = ratio("ch check big", "ch check small")
    goal(f"linearity of check --quiet for {size_ratio:.2f}x the input", c,
         f"<= {1.1 * size_ratio:.2f}", lambda v: v <= 1.1 * size_ratio)
    if small["cpus"] > 0:
        goal(f"linearity in CPU seconds (less sensitive to other load) for {size_ratio:.2f}x the input",
             big["cpus"] / small["cpus"], f"<= {1.1 * size_ratio:.2f}", lambda v: v <= 1.1 * size_ratio)
if big:
    goal(f"peak RSS / input, fix --diff big (median of {RSS_RUNS} runs)", big["rss"] / big["bytes"], "<= 4",
         lambda v: v <= 4)
    goal(f"peak RSS / input, fix --diff big (largest of {RSS_RUNS} runs)", big["rss_max"] / big["bytes"], "<= 4",
         lambda v: v <= 4)
goal("fix --diff big / bare parse", ratio("ch fix --diff big", "bare parse big"), "<= 1.3", lambda v: v <= 1.3)
if big and "bare parse big" in rows and rows["bare parse big"]["cpus"] > 0:
    # Not a goal: fix parses twice on purpose (it re-reads its output before writing), so
    # its CPU seconds are at least twice a bare parse's; shown so the cost is visible.
    goal("fix --diff big / bare parse, CPU seconds", big["cpus"] / rows["bare parse big"]["cpus"],
         "information, no goal", lambda v: True)
goal("check big / bare parse", ratio("ch check big", "bare parse big"), "<= 1.5 (indicative)", lambda v: v <= 1.5)

def cpu_ratio(a, b):
    if a in rows and b in rows and rows[b]["cpus"] > 0:
        return rows[a]["cpus"] / rows[b]["cpus"]
    return None

def instr_ratio(a, b):
    if a in instr and b in instr and instr[b] > 0:
        return instr[a] / instr[b]
    return None

if "ch check 20 lines" in instr:
    goal("check of a 20-line file, M instructions", instr["ch check 20 lines"] / 1e6, "<= 2.5",
         lambda v: v <= 2.5)
goal("fix --diff corpus / bare parse, CPU seconds", cpu_ratio("ch fix --diff corpus", "bare parse corpus"),
     "<= 2.5", lambda v: v <= 2.5)
goal("fix --diff corpus / bare parse, instructions", instr_ratio("ch fix --diff corpus", "bare parse corpus"),
     "<= 2.5", lambda v: v <= 2.5)
goal("fix --diff big / bare parse, instructions (fix parses twice on purpose)",
     instr_ratio("ch fix --diff big", "bare parse big"), "information, no goal", lambda v: True)
goal("compose-lint check corpus / ch fix --diff corpus", ratio("compose-lint check corpus", "ch fix --diff corpus"),
     ">= 50", lambda v: v >= 50)
goal("compose-lint check big / ch fix --diff big", ratio("compose-lint check big", "ch fix --diff big"),
     ">= 40", lambda v: v >= 40)
goal("compose-lint fix big / ch fix --diff big", ratio("compose-lint fix big", "ch fix --diff big"),
     ">= 400", lambda v: v >= 400)
# Against the anchors of shared/design/anchors.md (same machine kind) when compose-lint was not run here.
if "compose-lint check big" not in rows and big and 5.0e6 <= big["bytes"] <= 6.0e6:
    goal("anchor compose-lint check 12.8 s / ch fix --diff big", 12.8 / big["med"], ">= 40", lambda v: v >= 40)
    goal("anchor compose-lint fix 148 s / ch fix --diff big", 148 / big["med"], ">= 400", lambda v: v >= 400)
c = rows.get("ch fix --diff corpus")
if c:
    goal("CPU utilisation on the corpus run (2 cores)", c["cpu"], "close to 2", lambda v: v >= 1.6)
PY
