"""The negative control: a write with no fsync before its rename, which a power cut can empty.

python3 naive_writer.py STATE: adds one failed entry, writes a temp file and renames it over
STATE, as a careless tool would. The power-loss suite must catch it (tests/power_loss.rs
asserts that it does), which proves the suite can fail.
"""

import json
import os
import sys

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    state = json.load(f)
state["failed"]["B0NAIVE001"] = {"asin": "B0NAIVE001", "error": "naive", "retry_count": 1}
tmp = path + ".naive-tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)
os.rename(tmp, path)
