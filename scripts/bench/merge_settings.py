"""Merges JSON into a benchmark's settings file, for the cost of a feature in instructions
(`scripts/bench/instructions.sh --settings JSON`). A section given as an object is merged
field by field. `"telemetry": {"otlp_endpoint": "collector"}` starts a collector that
takes the traces (collector.py) and serves it until this process is killed.

    python3 -B scripts/bench/merge_settings.py SETTINGS_FILE JSON READY_FILE
"""

import json
import pathlib
import sys
import time

import collector


def main():
    path, extra, ready = pathlib.Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    settings = json.loads(path.read_text())
    for key, value in extra.items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    sink = None
    if settings.get("telemetry", {}).get("otlp_endpoint") == "collector":
        sink = collector.Collector().start()
        settings["telemetry"]["otlp_endpoint"] = sink.url
    path.write_text(json.dumps(settings))
    pathlib.Path(ready).touch()
    while sink:
        time.sleep(3600)


if __name__ == "__main__":
    main()
