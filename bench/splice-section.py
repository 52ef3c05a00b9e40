#!/usr/bin/env python3
"""Replace the section NAME of a benchmarks file with the text of REPORT:
everything between <!-- NAME:begin --> and <!-- NAME:end -->, appended
at the end when the file has no such section yet.

  bench/splice-section.py NAME BENCHMARKS.md REPORT
"""
import os
import sys

HEADER = ("# Benchmarks\n\n"
          "Measurements of agentjail against the tools people would otherwise "
          "use. Each section is produced by the script it names and replaced "
          "when that script runs again; numbers from different machines or "
          "runs are not comparable, ratios within one run are.\n")


def main(name, path, report):
    begin, end = "<!-- %s:begin -->" % name, "<!-- %s:end -->" % name
    with open(report) as f:
        block = begin + "\n" + f.read().strip("\n") + "\n" + end
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if not text.strip():
        text = HEADER
    b, e = text.find(begin), text.find(end)
    if b >= 0 and e > b:
        text = text[:b] + block + text[e + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip())
    main(*sys.argv[1:])
