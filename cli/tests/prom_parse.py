"""Reads Prometheus text from stdin with prometheus_client's parser (the
reference Python client's) and prints one JSON object: each sample as
"name{labels}" -> value. Fails on text the parser refuses."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
        samples.setdefault("__types__", {})[family.name] = family.type
json.dump(samples, sys.stdout)
