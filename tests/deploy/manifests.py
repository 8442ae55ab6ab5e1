"""Prints the YAML documents of the files named on the command line as one JSON object,
{file name: [documents]}, for tests/team_deploy.rs (Rust has no YAML reader in this
project; PyYAML comes with kubernetes-validate)."""

import json
import os
import sys

import yaml

documents = {}
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        documents[os.path.basename(path)] = [d for d in yaml.safe_load_all(f) if d is not None]
json.dump(documents, sys.stdout)
