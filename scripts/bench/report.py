"""The benchmark's report (scripts/bench/run.py measures): docs/benchmarks.md's tables,
Protogate against its targets, absolute and relative to the floor of the same run (issue
#27), and docs/benchmarks.svg."""

import math

CONNECTIONS = [1, 16, 64]
FLOOR = "hyper alone"
FEATURES_ON = "Protogate, features on"
# Against the floor of the same run (DESIGN.md, Performance): (label, ratio, target, met).
THROUGHPUT_SHARE = 0.85
ADDED_P50, ADDED_P99, ADDED_TTFT, CPU = 1.2, 1.5, 1.2, 1.3
INSTRUCTIONS = 1.5
FEATURES_SHARE = 0.90


def columns(results):
    """The measured gateways, Protogate's rows first, then the floor, then the peers."""
    first = ["Protogate", FEATURES_ON, FLOOR]
    names = [n for n in results if n != "direct"]
    return [n for n in first if n in names] + [n for n in names if n not in first]


def markdown(report):
    r = report["results"]
    d = r["direct"]
    names = columns(r)
    lines = [
        "# Benchmarks",
        "",
        f"Measured {report['date']} on {report['machine']['cores']} cores ({report['machine']['cpu']}, "
        f"Linux {report['machine']['kernel']}); {report['machine']['note']}. Every gateway forwards to the "
        "same mock OpenAI upstream on loopback; \"added\" is the gateway's time over a direct call measured "
        f"in the same run. {report['seconds_per_run']} s per wrk run, {report['streams_per_run']} streamed "
        "requests. Rerun with `scripts/bench.sh`; raw numbers in `bench/results/`.",
        "",
    ]
    if FLOOR in names:
        lines += [
            f"The {FLOOR} (`examples/bench_floor.rs`) is not a peer: it is hyper's server and client with "
            "nothing in between (no routing, checks, JSON or log), one thread per core, each body passed "
            "through as it arrives, to show what the second hop itself costs on this machine (its time to "
            "first token included). Everything Protogate adds over it is its own work.",
            "",
        ]
    lines += [f"> {n}" for n in report["notes"]]
    if report["notes"]:
        lines.append("")
    header = "| measure | direct | " + " | ".join(f"{n} {r[n].get('version', '')}".strip() for n in names) + " |"
    lines += [header, "|" + " --- |" * (2 + len(names))]

    def row(label, get, fmt, added=False):
        cells = [fmt(get(d)) if get(d) is not None else ""]
        for n in names:
            value = get(r[n])
            cell = fmt(value) if value is not None else "n/a"
            if added and value is not None:
                cell += f" ({value - get(d):+.3f})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    ms = lambda v: f"{v:.3f} ms"
    for c in CONNECTIONS:
        row(f"non-streaming, {c} conn., p50", lambda x, c=c: x[f"c{c}"]["p50_ms"], ms, True)
        row(f"non-streaming, {c} conn., p99", lambda x, c=c: x[f"c{c}"]["p99_ms"], ms, True)
        lines.append(
            f"| non-streaming, {c} conn., throughput | {d[f'c{c}']['rps']:.0f} req/s | "
            + " | ".join(
                f"{r[n][f'c{c}']['rps']:.0f} req/s ({100 * r[n][f'c{c}']['rps'] / d[f'c{c}']['rps']:.1f} %)"
                for n in names
            )
            + " |"
        )
    row("streaming, time to first token, p50", lambda x: x["stream"].get("ttft_p50_ms"), ms, True)
    row("streaming, time to first token, p99", lambda x: x["stream"].get("ttft_p99_ms"), ms, True)
    row("streaming, whole answer, p50", lambda x: x["stream"].get("total_p50_ms"), ms, True)
    row("streaming, whole answer, p99", lambda x: x["stream"].get("total_p99_ms"), ms, True)
    row("CPU time per request (64 conn.)", lambda x: x.get("cpu_ms_per_request"), ms)
    row("resident memory, idle", lambda x: x.get("rss_idle_mb"), lambda v: f"{v:.1f} MB")
    row("resident memory, peak", lambda x: x.get("rss_peak_mb"), lambda v: f"{v:.1f} MB")
    failed = [f"{n}: {r[n][f'c{c}']['errors']} non-2xx at {c} conn." for n in names for c in CONNECTIONS
              if r[n][f"c{c}"]["errors"]]
    failed += [f"{n}: {r[n]['stream']['error']}" for n in names if "error" in r[n]["stream"]]
    if failed:
        lines += ["", "Errors during the runs: " + "; ".join(failed) + "."]
    lines += ["", "![Latency and throughput per gateway](benchmarks.svg)", ""]
    if report.get("inprocess_us_per_request"):
        lines += [
            "## Protogate's own work, without sockets",
            "",
            "`examples/bench_inprocess.rs` calls the gateway service in a loop on one thread (no client, "
            "no upstream, no kernel): Protogate's own work, free of the client's and the mock's share. "
            "The demo request is everything a forwarded request costs but the upstream call.",
            "",
            "| request | CPU per request |",
            "| --- | --- |",
        ]
        lines += [f"| {name} | {us:.2f} µs |" for name, us in report["inprocess_us_per_request"].items()]
        lines.append("")
    if "Protogate" in r and FLOOR in r:
        lines += against_floor(r["Protogate"], r[FLOOR], d, report["seconds_per_run"])
    if "Protogate" in r and FEATURES_ON in r:
        lines += features_on(r["Protogate"], r[FEATURES_ON], d)
    if "Protogate" in r:
        peers = {n: r[n] for n in names if n not in ("Protogate", FEATURES_ON, FLOOR)}
        lines += targets(r["Protogate"], d, peers, r.get(FLOOR))
    return "\n".join(lines)


def yes(ok):
    return "yes" if ok else "**no**"


def added_ratio(label, gateway, floor, direct, get, most):
    """A row of added time (over the direct call) as a multiple of the floor's. Both go
    through the direct call's upstream, so neither can truly add nothing or less: when
    one reads so, the direct call's own measure was off (a stall in a short run), and
    the row cannot tell."""
    mine, least = get(gateway) - get(direct), get(floor) - get(direct)
    cells = [label, f"{mine:+.3f} ms", f"{least:+.3f} ms"]
    if not (mine > 0 and least > 0):
        return cells + ["n/a (a row read at or under the direct call)", f"≤ {most}×", "cannot tell"]
    return cells + [f"{mine / least:.2f}×", f"≤ {most}×", yes(mine / least <= most)]


def against_floor(p, floor, d, seconds):
    """Issue #27's targets: Protogate as a ratio to the floor of this same run, which the
    machine's moods move together with it."""
    nan = float("nan")
    ttft = lambda g: g.get("stream", {}).get("ttft_p50_ms", nan)
    share = p["c64"]["rps"] / floor["c64"]["rps"]
    cpu = p.get("cpu_ms_per_request", nan) / floor.get("cpu_ms_per_request", nan)
    rows = [
        ["throughput, 64 conn.", f"{p['c64']['rps']:.0f} req/s", f"{floor['c64']['rps']:.0f} req/s",
         f"{100 * share:.1f} %", f"≥ {100 * THROUGHPUT_SHARE:.0f} %", yes(share >= THROUGHPUT_SHARE)],
        added_ratio("added latency, 1 conn., p50", p, floor, d, lambda g: g["c1"]["p50_ms"], ADDED_P50),
        added_ratio("added latency, 1 conn., p99", p, floor, d, lambda g: g["c1"]["p99_ms"], ADDED_P99),
        added_ratio("added time to first token, p50", p, floor, d, ttft, ADDED_TTFT),
        ["CPU per forwarded request (64 conn.)", f"{p.get('cpu_ms_per_request', nan):.4f} ms",
         f"{floor.get('cpu_ms_per_request', nan):.4f} ms", f"{cpu:.2f}×", f"≤ {CPU}×", yes(cpu <= CPU)],
    ]
    met = sum(row[-1] == "yes" for row in rows)
    unknown = sum(row[-1] == "cannot tell" for row in rows)
    lines = [
        "## Protogate against the floor of the same run",
        "",
        f"Issue #27's targets: each a ratio to what {FLOOR} (`examples/bench_floor.rs`) reached in this "
        "same run; added times are over the direct call.",
        "",
        f"| measure | Protogate | {FLOOR} (floor) | Protogate ÷ floor | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        f"Met {met} of the {len(rows)} targets measured here"
        + (f" ({unknown} could not tell: run again)" if unknown else "")
        + ". Instructions per forwarded request (target: "
        f"at most {INSTRUCTIONS}× the floor's) are counted apart, by callgrind: "
        "`scripts/bench/instructions.sh`; this run does not count them.",
    ]
    if seconds < 5:
        lines.append(f"Runs of {seconds} s: these ratios are noisy; a full run (10 s) decides.")
    return lines + [""]


def features_on(off, on, d):
    """The features-on row against Protogate's own, features off, in the same run."""
    share = on["c64"]["rps"] / off["c64"]["rps"]
    lines = [
        "## With the per-request features on",
        "",
        "A per-provider limit (never reached), metrics, traces to a collector that accepts them, "
        "and the cache enabled with every request a miss, against the same Protogate with them off.",
        "",
        "| measure | features on | features off | on ÷ off | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| throughput, 64 conn. | {on['c64']['rps']:.0f} req/s | {off['c64']['rps']:.0f} req/s | "
        f"{100 * share:.1f} % | ≥ {100 * FEATURES_SHARE:.0f} % | {yes(share >= FEATURES_SHARE)} |",
    ]
    for label, get in [("added latency, 1 conn., p50", lambda g: g["c1"]["p50_ms"] - d["c1"]["p50_ms"]),
                       ("added latency, 1 conn., p99", lambda g: g["c1"]["p99_ms"] - d["c1"]["p99_ms"])]:
        lines.append(f"| {label} | {get(on):+.3f} ms | {get(off):+.3f} ms | | | |")
    if "cpu_ms_per_request" in on and "cpu_ms_per_request" in off:
        lines.append(f"| CPU per forwarded request (64 conn.) | {on['cpu_ms_per_request']:.4f} ms | "
                     f"{off['cpu_ms_per_request']:.4f} ms | {on['cpu_ms_per_request'] / off['cpu_ms_per_request']:.2f}× "
                     "| | |")
    seen = on.get("features", {})
    if seen:
        lines += [
            "",
            f"Checked after the runs: {seen['cache_hits']} cache hits over {seen['requests']} wrk requests "
            f"(each should miss); the collector took {seen['exports']} exports ({seen['export_mb']:.1f} MB), "
            f"{seen['spans_dropped']} spans were dropped; {seen['errors']} non-2xx answers. The collector "
            f"shares the machine: it took {seen['collector_cpu_ms_per_request']:.4f} ms of CPU per request, "
            "not counted in Protogate's CPU above but in its throughput.",
        ]
    return lines + [""]


def targets(p, d, peers, floor=None):
    """Protogate against its own targets (DESIGN.md) and the peers, row by row; beside it
    what the floor reached in the same run, the least a second hop costs here."""

    def measures(g):
        stream = g.get("stream", {})
        return [
            ("added latency, 1 conn., p50", g["c1"]["p50_ms"] - d["c1"]["p50_ms"], "< 0.05 ms", lambda v: v < 0.05),
            ("added latency, 1 conn., p99", g["c1"]["p99_ms"] - d["c1"]["p99_ms"], "< 0.3 ms", lambda v: v < 0.3),
            ("throughput, 64 conn., share of direct", 100 * g["c64"]["rps"] / d["c64"]["rps"], "≥ 40 %",
             lambda v: v >= 40),
            ("added time to first token, p50", stream.get("ttft_p50_ms", float("nan")) - d["stream"]["ttft_p50_ms"],
             "< 0.1 ms", lambda v: v < 0.1),
            ("CPU per forwarded request", g.get("cpu_ms_per_request", float("nan")), "< 0.03 ms", lambda v: v < 0.03),
            ("resident memory, idle", g.get("rss_idle_mb", float("nan")), "< 20 MB", lambda v: v < 20),
        ]

    unit = lambda label: " %" if "share" in label else (" MB" if "memory" in label else " ms")
    lines = ["## Protogate against its absolute targets", ""]
    if floor:
        lines += ["| measure | Protogate | target | met | hyper alone (floor), same run |",
                  "| --- | --- | --- | --- | --- |"]
        for (label, value, target, ok), (_, least, _, floor_ok) in zip(measures(p), measures(floor)):
            lines.append(f"| {label} | {value:.3f}{unit(label)} | {target} | {'yes' if ok(value) else '**no**'} | "
                         f"{least:.3f}{unit(label)}{'' if floor_ok(least) else ' (misses it too)'} |")
    else:
        lines += ["| measure | Protogate | target | met |", "| --- | --- | --- | --- |"]
        for label, value, target, ok in measures(p):
            lines.append(f"| {label} | {value:.3f}{unit(label)} | {target} | {'yes' if ok(value) else '**no**'} |")
    behind = []
    lower_is_better = [
        ("time to first token", lambda g: g.get("stream", {}).get("ttft_p50_ms")),
        ("whole streamed answer", lambda g: g.get("stream", {}).get("total_p50_ms")),
        ("CPU per request", lambda g: g.get("cpu_ms_per_request")),
        ("idle memory", lambda g: g.get("rss_idle_mb")),
        ("peak memory", lambda g: g.get("rss_peak_mb")),
    ]
    for name, peer in peers.items():
        for c in CONNECTIONS:
            if peer[f"c{c}"]["rps"] > p[f"c{c}"]["rps"]:
                behind.append(f"{name} has more throughput at {c} connections")
            if peer[f"c{c}"]["p50_ms"] < p[f"c{c}"]["p50_ms"]:
                behind.append(f"{name} has a lower p50 at {c} connections")
        for what, get in lower_is_better:
            if get(peer) is not None and get(p) is not None and get(peer) < get(p):
                behind.append(f"{name} has less {what}")
        if "error" in peer.get("stream", {}):
            behind.append(f"{name}'s streams failed, so they are not compared")
    if not peers:
        verdict = "No peer (LiteLLM, Portkey) was measured in this run, so none is compared."
    elif behind:
        verdict = "Behind a peer, or not compared: " + "; ".join(behind) + "."
    else:
        verdict = "Ahead of every peer on every row."
    lines += ["", verdict, ""]
    return lines


def svg(report):
    """Two bar charts side by side: added latency at one connection (p50 and p99, on a
    log scale: the gateways differ by orders of magnitude), and throughput at 64 and 16
    connections as a share of direct."""
    r = report["results"]
    names = columns(r)
    d = r["direct"]
    colors = {"Protogate": "#4f46e5", FEATURES_ON: "#818cf8", FLOOR: "#9ca3af", "LiteLLM proxy": "#d97706", "Portkey gateway": "#059669"}
    half, label_w, value_w, pad = 470, 118, 84, 16
    bar_w = half - 2 * pad - label_w - value_w
    height = 96 + 58 * len(names)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * half}" height="{height}" '
           'font-family="system-ui, sans-serif" font-size="12" fill="#1f2937">',
           f'<rect width="{2 * half}" height="{height}" fill="#fff"/>']

    def chart(x0, title, legend, values, scale, fmt):
        out.append(f'<text x="{x0}" y="22" font-weight="600" font-size="13">{title}</text>')
        out.append(f'<text x="{x0}" y="40" fill="#6b7280">{legend}</text>')
        for i, n in enumerate(names):
            y = 56 + i * 58
            out.append(f'<text x="{x0}" y="{y + 18}">{n}</text>')
            for j, v in enumerate(values[n]):
                if v is None:
                    out.append(f'<text x="{x0 + label_w}" y="{y + 11 + j * 18}" fill="#6b7280">n/a</text>')
                    continue
                bw = max(2, bar_w * scale(v))
                opacity = "1" if j == 0 else "0.45"
                out.append(f'<rect x="{x0 + label_w}" y="{y + j * 18}" width="{bw:.1f}" height="14" rx="2" '
                           f'fill="{colors.get(n, "#555")}" fill-opacity="{opacity}"/>')
                out.append(f'<text x="{x0 + label_w + bw + 6:.1f}" y="{y + 11 + j * 18}">{fmt(v)}</text>')

    added = {n: (max(0.001, r[n]["c1"]["p50_ms"] - d["c1"]["p50_ms"]),
                 max(0.001, r[n]["c1"]["p99_ms"] - d["c1"]["p99_ms"])) for n in names}
    top = max(v for pair in added.values() for v in pair)
    low = 0.01
    log_scale = lambda v: (math.log10(max(v, low)) - math.log10(low)) / max(1e-9, math.log10(top) - math.log10(low))
    chart(pad, "Added latency, 1 connection (lower is better)", "p50, then p99; log scale", added, log_scale,
          lambda v: f"+{v:.2f} ms" if v < 10 else f"+{v:.0f} ms")
    share = {n: (100 * r[n]["c64"]["rps"] / d["c64"]["rps"], 100 * r[n]["c16"]["rps"] / d["c16"]["rps"])
             for n in names}
    most = max(v for pair in share.values() for v in pair)
    chart(half + pad, "Throughput, share of a direct call (higher is better)", "64 connections, then 16",
          share, lambda v: v / most, lambda v: f"{v:.1f} %")
    out.append(f'<text x="{pad}" y="{height - 12}" fill="#6b7280">{report["date"]}, '
               f'{report["machine"]["cores"]} cores; client, mock upstream and gateway on one machine '
               "(scripts/bench.sh)</text>")
    out.append("</svg>")
    return "\n".join(out)

