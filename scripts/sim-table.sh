#!/usr/bin/env bash
# make sim: runs the 10,000-node simulation table (issue 3) with the release
# binary and writes the results into docs/simulation.md between the
# "sim-table" markers. Every run is `grapevine sim ... --json`; the raw JSON of
# each run is kept in $SIM_OUT so the table can be re-rendered or checked.
#
#   scripts/sim-table.sh build/grapevine
#
# Environment (defaults in brackets):
#   SIM_NODES [10000]   SIM_SEEDS ["1 2 3 4 5"]   SIM_BROADCASTS [1000]
#   SIM_JOBS [2]        parallel runs (this machine has 2 cores)
#   SIM_OUT [build/sim-results]   SIM_DOC [docs/simulation.md]
#   SIM_ONLY            space-separated run names to (re)run, e.g. "overlay churn"
#   SIM_FRESH=1         rerun runs whose JSON already exists
#   SIM_RENDER_ONLY=1   run nothing; render the table from the JSON in $SIM_OUT
set -euo pipefail

BIN=${1:?usage: scripts/sim-table.sh PATH/TO/grapevine}
NODES=${SIM_NODES:-10000}
SEEDS=${SIM_SEEDS:-"1 2 3 4 5"}
BROADCASTS=${SIM_BROADCASTS:-1000}
JOBS=${SIM_JOBS:-2}
OUT=${SIM_OUT:-build/sim-results}
DOC=${SIM_DOC:-docs/simulation.md}
ONLY=${SIM_ONLY:-}

if ! command -v python3 >/dev/null; then
  echo "sim-table.sh: python3 is needed to render the table (apt-get install python3)" >&2
  exit 1
fi
if [[ ! -x "$BIN" ]]; then
  echo "sim-table.sh: no executable at $BIN (run make build first)" >&2
  exit 1
fi
mkdir -p "$OUT"

# name|flags
RUNS=(
  "overlay|--scenario overlay"
  "single-sender|--scenario single-sender"
  "multi-sender|--scenario multi-sender"
  "mass-failure-20|--scenario mass-failure --fail 0.2"
  "mass-failure-50|--scenario mass-failure --fail 0.5"
  "mass-failure-80|--scenario mass-failure --fail 0.8"
  "mass-failure-95|--scenario mass-failure --fail 0.95"
  "churn|--scenario churn"
  "loss-1|--scenario loss --loss 0.01"
  "loss-10|--scenario loss --loss 0.1"
  "loss-30|--scenario loss --loss 0.3"
)

jobs_file="$OUT/jobs.txt"
: >"$jobs_file"
for run in "${RUNS[@]}"; do
  name=${run%%|*}
  flags=${run#*|}
  if [[ -n "$ONLY" && " $ONLY " != *" $name "* ]]; then continue; fi
  for seed in $SEEDS; do
    out="$OUT/$name-seed$seed.json"
    if [[ -s "$out" && "${SIM_FRESH:-0}" != 1 ]]; then continue; fi
    echo "$BIN sim --nodes $NODES --seed $seed --broadcasts $BROADCASTS $flags --json > $out.tmp && mv $out.tmp $out" >>"$jobs_file"
  done
done

if [[ "${SIM_RENDER_ONLY:-0}" == 1 ]]; then : >"$jobs_file"; fi
total=$(wc -l <"$jobs_file")
echo "sim-table.sh: $total runs of $NODES nodes, $JOBS at a time; results in $OUT"
if [[ "$total" -gt 0 ]]; then
  # Each line is one shell command; a failed run stops the table (its error names the seed).
  xargs -P "$JOBS" -I{} -d '\n' sh -c '{} || { echo "failed: {}" >&2; exit 255; }' <"$jobs_file"
fi

python3 - "$OUT" "$DOC" "$NODES" "$BROADCASTS" "$SEEDS" "$BIN" <<'PY'
import glob, json, os, re, sys

out, doc, nodes, broadcasts, seeds, binary = sys.argv[1:7]

def load(name):
    runs = []
    for path in sorted(glob.glob(os.path.join(out, name + "-seed*.json"))):
        with open(path) as f:
            runs.append(json.load(f))
    return runs

def get(run, key):
    value = run
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value

def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.2f" % v
    if v != 0 and abs(v) < 0.01:
        return "%.2e" % v
    return "%.4f" % v

# (label, key, worst: "min" | "max", paper / target)
ROWS = {
    "overlay": [
        ("components", "components", "max", "1 (target: 1 every seed)"),
        ("views symmetric", "symmetric", "min", "yes"),
        ("full active views", "full_active_fraction", "min", "≥ 0.99"),
        ("clustering coefficient", "clustering_coefficient", "max", "0.00092 (HyParView paper)"),
        ("average shortest path", "average_shortest_path", "max", "6.385 (HyParView paper)"),
        ("longest shortest path seen", "diameter_seen", "max", ""),
        ("memory per node, bytes (mean)", "memory_per_node_bytes.mean", "max", ""),
        ("wall time, ms", "wall_ms", "max", ""),
    ],
    "single-sender": [
        ("reliability", "reliability", "min", "1.0"),
        ("RMR after the first 2 broadcasts", "rmr_after_warmup", "max", "≤ 0.01 (paper: 0 vs 3 for flooding)"),
        ("RMR, all broadcasts", "rmr", "max", ""),
        ("LDH (mean over broadcasts)", "ldh", "max", "≤ flooding + 1"),
        ("LDH max", "ldh_max", "max", ""),
        ("flooding LDH (same overlay and sender)", "flooding.ldh", "max", ""),
        ("LDH max minus flooding's", "ldh_max_minus_flooding", "max", "≤ 1"),
        ("flooding RMR (same overlay and sender)", "flooding.rmr", "max", ""),
        ("control messages per broadcast", "control_per_broadcast", "max", ""),
        ("GRAFT+PRUNE per node per broadcast", "graft_prune_per_node_per_broadcast", "max", ""),
        ("wall time, ms (as run by make sim, other jobs sharing the CPUs)", "wall_ms", "max", "≤ 60000 (see the status above)"),
    ],
    "multi-sender": [
        ("10 senders: reliability", "reliability", "min", "1.0"),
        ("10 senders: RMR", "rmr", "max", "≤ 0.1 (others accept < 1)"),
        ("10 senders: LDH (mean) / flooding's", "ldh_vs_flooding", "max", "≤ 1.25"),
        ("10 senders: LDH (mean)", "ldh", "max", ""),
        ("10 senders: flooding LDH (same overlay and senders)", "flooding.ldh", "max", ""),
        ("10 senders: GRAFT+PRUNE per node per broadcast", "graft_prune_per_node_per_broadcast", "max", "≤ 0.05"),
        ("10 senders: control messages per broadcast", "control_per_broadcast", "max", "paper: +22.5% for its optimised tree"),
        ("uniform senders: reliability", "uniform_senders.reliability", "min", "1.0"),
        ("uniform senders: RMR", "uniform_senders.rmr", "max", "≤ 0.1"),
        ("uniform senders: LDH (mean) / flooding's", "uniform_senders.ldh_vs_flooding", "max", "≤ 1.25"),
        ("uniform senders: LDH (mean)", "uniform_senders.ldh", "max", ""),
        ("uniform senders: flooding LDH", "uniform_senders.flooding.ldh", "max", ""),
        ("uniform senders: GRAFT+PRUNE per node per broadcast", "uniform_senders.graft_prune_per_node_per_broadcast", "max", "≤ 0.05"),
        ("wall time, ms", "wall_ms", "max", ""),
    ],
    "mass-failure": [
        ("reliability over the broadcasts", "reliability", "min", "paper: ~1.0 below 90% failures; ≥ 0.999 at 80%"),
        ("healing time, shuffle periods", "healing_shuffle_periods", "max", "≤ 1 at 50% and 80%; paper: 1–2 cycles below 80%"),
        ("full healing (100% full views), s", "full_healing_time_s", "max", ""),
        ("components after", "components", "max", "1"),
        ("full active views after", "full_active_fraction_after", "min", ""),
        ("RMR", "rmr", "max", ""),
        ("LDH (mean)", "ldh", "max", "paper: max hops 9"),
        ("wall time, ms", "wall_ms", "max", ""),
    ],
    "churn": [
        ("reliability", "reliability", "min", "1.0"),
        ("RMR after the first 2 broadcasts", "rmr_after_warmup", "max", "≤ 0.05"),
        ("RMR, all broadcasts", "rmr", "max", ""),
        ("LDH (mean)", "ldh", "max", ""),
        ("memory per node, last period / after warm-up", "memory_growth", "max", "flat (≈ 1)"),
        ("memory per node, bytes (last period)", "memory_per_node_last_period_bytes", "max", ""),
        ("components at the end", "components", "max", "1"),
        ("nodes replaced", "replaced_nodes", "max", ""),
        ("wall time, ms", "wall_ms", "max", ""),
    ],
    "loss": [
        ("reliability", "reliability", "min", "1.0 (IHAVE/GRAFT repair)"),
        ("flooding alone: reliability", "flooding.reliability", "min", ""),
        ("RMR", "rmr", "max", ""),
        ("LDH (mean)", "ldh", "max", ""),
        ("control messages per broadcast", "control_per_broadcast", "max", ""),
        ("wall time, ms", "wall_ms", "max", ""),
    ],
}

SECTIONS = [
    ("Stable overlay", "overlay", ["overlay"]),
    ("Single sender", "single-sender", ["single-sender"]),
    ("Random senders", "multi-sender", ["multi-sender"]),
    ("Mass failure, 20%", "mass-failure", ["mass-failure-20"]),
    ("Mass failure, 50%", "mass-failure", ["mass-failure-50"]),
    ("Mass failure, 80%", "mass-failure", ["mass-failure-80"]),
    ("Mass failure, 95%", "mass-failure", ["mass-failure-95"]),
    ("Churn, 0.5% replaced per shuffle period for 100 periods", "churn", ["churn"]),
    ("Link loss 1%", "loss", ["loss-1"]),
    ("Link loss 10%", "loss", ["loss-10"]),
    ("Link loss 30%", "loss", ["loss-30"]),
]

lines = []
lines.append("Generated by `scripts/sim-table.sh %s` (`make sim`): %s nodes, %s broadcasts per run, seeds %s "
             "(each section says how many it has). Mean and worst over the seeds; the worst is the minimum for "
             "reliability-like figures and the maximum for costs. Raw JSON per run: `%s/`."
             % (binary, nodes, broadcasts, ", ".join(seeds.split()), out))
lines.append("")
for title, kind, names in SECTIONS:
    runs = [r for name in names for r in load(name)]
    if not runs:
        continue
    lines.append("#### %s (%d seeds)" % (title, len(runs)))
    lines.append("")
    lines.append("| figure | mean | worst | paper / target |")
    lines.append("|---|---|---|---|")
    for label, key, worst, paper in ROWS[kind]:
        values = [get(r, key) for r in runs]
        present = [v for v in values if v is not None]
        if not present:
            if key.startswith("healing") or key.startswith("full_healing"):
                lines.append("| %s | not reached | not reached | %s |" % (label, paper))
            continue
        if all(isinstance(v, bool) for v in present):
            mean = all(present)
            bad = (min if worst == "min" else max)(present)
            lines.append("| %s | %s | %s | %s |" % (label, fmt(mean), fmt(bad), paper))
            continue
        mean = sum(present) / len(present)
        bad = min(present) if worst == "min" else max(present)
        missing = len(values) - len(present)
        note = " (%d of %d seeds: not reached)" % (missing, len(values)) if missing else ""
        lines.append("| %s | %s | %s%s | %s |" % (label, fmt(mean), fmt(bad), note, paper))
    if kind == "overlay":
        hist = {}
        for r in runs:
            for degree, count in (r.get("in_degree") or {}).items():
                hist[int(degree)] = hist.get(int(degree), 0) + count
        if hist:
            total = sum(hist.values())
            lines.append("")
            lines.append("In-degree distribution (all seeds): " +
                         ", ".join("%d: %.2f%%" % (d, 100.0 * c / total) for d, c in sorted(hist.items())) + ".")
    lines.append("")

table = "\n".join(lines)
with open(doc) as f:
    text = f.read()
begin, end = "<!-- sim-table:begin -->", "<!-- sim-table:end -->"
if begin not in text or end not in text:
    sys.exit("sim-table.sh: %s has no %s ... %s markers" % (doc, begin, end))
text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: begin + "\n" + table + "\n" + end, text, flags=re.S)
with open(doc, "w") as f:
    f.write(text)
print("sim-table.sh: wrote %s" % doc)
PY
