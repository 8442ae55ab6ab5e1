#!/usr/bin/env python3
"""Side-by-side gateway benchmark for scripts/bench.sh (standard library only).

Starts the fast mock upstream, then each gateway in turn configured to forward to it
(Protogate, and the peers that were installed: LiteLLM's proxy, Portkey's gateway), and
measures against a direct call to the same upstream in the same run:

- non-streaming at 1, 16 and 64 connections (wrk): throughput, p50/p99, added latency;
- streaming (bench_client): time to first token and to the end, p50/p99;
- resident memory idle and at its peak, CPU time per request (the process tree's
  utime + stime over the 64-connection run, divided by the requests it served).

The direct 64-connection throughput is measured before and after the gateways; when the
two differ by more than 15 % the machine was busy meanwhile, and the round is run again
(said in the report). Writes bench/results/<date>.json, docs/benchmarks.md and
docs/benchmarks.svg.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONNECTIONS = [1, 16, 64]
BUSY = 0.15
FLOOR = "hyper alone"
LITELLM_KEY = "sk-" + "0123456789abcdef" * 4  # not a secret: the benchmark's own proxy


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


def tree(pid):
    """pid and all its descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            children = []
        pids += children
        frontier += children
    return pids


def status_kb(pid, field):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / ticks


def to_ms(text):
    value = float(re.match(r"[\d.]+", text).group())
    if text.endswith("us"):
        return value / 1000
    if text.endswith("ms"):
        return value
    return value * 1000


def wrk(url, connections, seconds, headers):
    threads = 1 if connections == 1 else 2
    env = dict(os.environ, BENCH_HEADERS=header_lines(headers))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", os.path.join(ROOT, "scripts/bench/post.lua"), url + "/v1/chat/completions"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": to_ms(latency["50"]),
        "p99_ms": to_ms(latency["99"]),
        "requests": requests,
        "errors": int(errors.group(1)) if errors else 0,
    }


def header_lines(headers):
    """Extra request headers for wrk's script and bench_client: one `Name: value` a line."""
    return "\n".join(f"{k}: {v}" for k, v in headers.items())


def stream(client, url, n, headers):
    env = dict(os.environ, BENCH_HEADERS=header_lines(headers))
    out = subprocess.run([client, "ttft", url, str(n)], capture_output=True, text=True, env=env, check=True).stdout
    ttft50, ttft99, total50, total99 = (float(v) / 1000 for v in out.split())
    return {"ttft_p50_ms": ttft50, "ttft_p99_ms": ttft99, "total_p50_ms": total50, "total_p99_ms": total99}


class Gateway:
    """A gateway process: how to start it, the URL and headers a client uses."""

    def __init__(self, name, version, argv, url, headers=None, env=None, ready="/"):
        self.name, self.version, self.argv, self.url = name, version, argv, url
        self.headers, self.env, self.ready = headers or {}, env or {}, ready
        self.process = None

    def start(self, work):
        log = open(os.path.join(work, f"{self.name}.log"), "w")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **self.env),
            start_new_session=True,
        )
        wait_http(self.url + self.ready, 120)
        time.sleep(2)  # settle: lazy imports, first GC

    def stop(self):
        if self.process:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def merged(base, extra):
    """`extra` merged into `base`, objects key by key."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged(base[key], value)
        else:
            base[key] = value
    return base


def gateways(args, work, upstream):
    up = f"http://127.0.0.1:{upstream}/v1"
    found = []
    settings = os.path.join(work, "protogate.json")
    with open(settings, "w") as f:
        json.dump(merged({
            "port": 0, "https": {"enabled": False}, "default_provider": "bench",
            "providers": [{"id": "bench", "kind": "openai", "base_url": up, "default_model": "bench"}],
            "limits": {"requests_per_minute": 4000000000, "burst": 4000000000, "max_concurrent_streams": 4096},
            "log": {"dir": os.path.join(work, "logs")},
        }, json.loads(args.settings)), f)
    port = free_port()
    version = subprocess.run([args.protogate, "--version"], capture_output=True, text=True).stdout.split()[-1]
    found.append(Gateway(
        "Protogate", version,
        [args.protogate, "serve", "--no-https", "--port", str(port), "--config", settings],
        f"http://127.0.0.1:{port}", env={"PROTOGATE_SECRET_BENCH": "sk-bench-not-a-secret"}, ready="/health",
    ))
    if args.floor:
        # Not a peer: the least any proxy costs here (hyper alone, see the example).
        port = free_port()
        found.append(Gateway(
            FLOOR, args.hyper_version, [args.floor, str(upstream), str(port)],
            f"http://127.0.0.1:{port}", ready="/v1/chat/completions",
        ))
    if args.litellm and not args.quick:
        config = os.path.join(work, "litellm.yaml")
        with open(config, "w") as f:
            f.write(
                "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n"
                f"      api_base: {up}\n      api_key: sk-bench-not-a-secret\n"
                "litellm_settings:\n  telemetry: false\n  drop_params: true\n"
            )
        port = free_port()
        found.append(Gateway(
            "LiteLLM proxy", args.litellm_version,
            [args.litellm, "--config", config, "--port", str(port), "--num_workers", "1"],
            f"http://127.0.0.1:{port}", ready="/health/liveliness",
            # It refuses to start without a master key, which clients then send.
            headers={"Authorization": f"Bearer {LITELLM_KEY}"},
            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "True",
                 "LITELLM_MASTER_KEY": LITELLM_KEY},
        ))
    if args.portkey and not args.quick:
        port = free_port()
        found.append(Gateway(
            "Portkey gateway", args.portkey_version,
            # The preload makes its streams work on Node 20 (see the file).
            ["node", "--import", os.path.join(ROOT, "scripts/bench/portkey-fetch.mjs"), args.portkey,
             f"--port={port}", "--headless"],
            f"http://127.0.0.1:{port}",
            headers={"x-portkey-provider": "openai", "x-portkey-custom-host": up,
                     "Authorization": "Bearer sk-bench-not-a-secret"},
        ))
    return found


def measure(target, args, pid=None):
    row = {}
    for c in CONNECTIONS:
        before = cpu_seconds(pid) if pid and c == 64 else None
        row[f"c{c}"] = wrk(target.url, c, args.secs, target.headers)
        if before is not None:
            used = cpu_seconds(pid) - before
            row["cpu_ms_per_request"] = 1000 * used / max(1, row["c64"]["requests"])
    try:
        row["stream"] = stream(args.client, target.url, args.streams, target.headers)
    except subprocess.CalledProcessError as e:
        why = [l for l in (e.stderr or "").strip().splitlines() if not l.startswith("note:")][-1:] or ["no output"]
        row["stream"] = {"error": f"streamed requests failed: {why[0]}"}
    return row


def round_(args, work, upstream_port, direct):
    results = {"direct": measure(direct, args)}
    for gw in gateways(args, work, upstream_port):
        print(f"bench: {gw.name}", file=sys.stderr)
        gw.start(work)
        try:
            pid = gw.process.pid
            idle = status_kb(pid, "VmRSS")
            row = measure(gw, args, pid)
            row["rss_idle_mb"] = idle / 1024
            row["rss_peak_mb"] = status_kb(pid, "VmHWM") / 1024
            row["version"] = gw.version
            results[gw.name] = row
        finally:
            gw.stop()
    after = wrk(direct.url, 64, args.secs, {})
    return results, after


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protogate", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--secs", type=int, default=10)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--inprocess")
    parser.add_argument("--floor")
    parser.add_argument("--hyper-version", default="")
    parser.add_argument("--litellm")
    parser.add_argument("--litellm-version", default="")
    parser.add_argument("--portkey")
    parser.add_argument("--portkey-version", default="")
    parser.add_argument("--quick", action="store_true", help="Protogate and direct only, short runs, nothing written")
    parser.add_argument("--settings", default="{}", help="JSON merged into Protogate's settings (a feature's cost)")
    args = parser.parse_args()
    if args.quick:
        args.secs, args.streams = 1, 50

    work = tempfile.mkdtemp(prefix="protogate-bench-")
    upstream = subprocess.Popen([args.upstream, "0"], stdout=subprocess.PIPE, text=True)
    try:
        upstream_port = int(upstream.stdout.readline())
        direct = Gateway("direct", "", [], f"http://127.0.0.1:{upstream_port}")
        notes = []
        if json.loads(args.settings):
            notes.append(f"Protogate ran with these settings merged into its own: {args.settings}")
        results, after = round_(args, work, upstream_port, direct)
        drift = abs(after["rps"] - results["direct"]["c64"]["rps"]) / results["direct"]["c64"]["rps"]
        if drift > BUSY and not args.quick:
            notes.append(
                f"The first round was repeated: direct throughput moved by {100 * drift:.0f} % while it ran "
                "(the machine was busy with other work)."
            )
            print("bench: the machine was busy; running the round again", file=sys.stderr)
            results, after = round_(args, work, upstream_port, direct)
            drift = abs(after["rps"] - results["direct"]["c64"]["rps"]) / results["direct"]["c64"]["rps"]
            if drift > BUSY:
                notes.append(f"The second round moved by {100 * drift:.0f} % too: read these numbers with care.")
    finally:
        upstream.terminate()
        shutil.rmtree(work, ignore_errors=True)

    inprocess = {}
    if args.inprocess:
        out = subprocess.run([args.inprocess, "20000" if args.quick else "200000"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            name, rest = line.split(": ", 1)
            inprocess[name] = float(rest.split()[0])
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": cpu_model(),
            "kernel": platform.release(),
            "note": "client (wrk, bench_client), mock upstream and gateway share the machine",
        },
        "seconds_per_run": args.secs,
        "streams_per_run": args.streams,
        "notes": notes,
        "results": results,
        "inprocess_us_per_request": inprocess,
    }
    if args.quick:
        print(markdown(report))
        return
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    with open(os.path.join(ROOT, f"bench/results/{stamp}.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(ROOT, "docs/benchmarks.md"), "w") as f:
        f.write(markdown(report))
    with open(os.path.join(ROOT, "docs/benchmarks.svg"), "w") as f:
        f.write(svg(report))
    print(markdown(report))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def markdown(report):
    r = report["results"]
    d = r["direct"]
    names = [n for n in r if n != "direct"]
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
                cell += f" (+{value - get(d):.3f})"
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
    if "Protogate" in r:
        lines += targets(r["Protogate"], d, {n: r[n] for n in names if n not in ("Protogate", FLOOR)}, r.get(FLOOR))
    return "\n".join(lines)


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
    lines = ["## Protogate against its targets", ""]
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
    lines += ["", "Ahead of every peer on every row." if not behind else "Behind a peer, or not compared: "
              + "; ".join(behind) + ".", ""]
    return lines


def svg(report):
    """Two bar charts side by side: added latency at one connection (p50 and p99, on a
    log scale: the gateways differ by orders of magnitude), and throughput at 64 and 16
    connections as a share of direct."""
    import math

    r = report["results"]
    names = [n for n in r if n != "direct"]
    d = r["direct"]
    colors = {"Protogate": "#4f46e5", FLOOR: "#9ca3af", "LiteLLM proxy": "#d97706", "Portkey gateway": "#059669"}
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


if __name__ == "__main__":
    main()
