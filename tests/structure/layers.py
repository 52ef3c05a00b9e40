"""The structure of the tree, checked on the built objects (tests/structure/layers)."""
import collections
import glob
import os
import subprocess
import sys

build = sys.argv[1]
failures = []


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDRBC":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
    return defined, used


def objects(lib):
    """The objects of a convenience library, by source file name."""
    found = {}
    for obj in glob.glob(os.path.join(build, "*", ".libs", "lib%s_la-*.o" % lib)):
        found[os.path.basename(obj).split("-", 1)[1][:-2]] = obj
    if not found:
        failures.append("no objects of lib%s under %s" % (lib, build))
    return found


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


common = {name: symbols(o) for name, o in objects("ajcommon").items()}
common_defs = set().union(*(d for d, _ in common.values())) if common else set()
for lib, side in (("ajbroker", "broker"), ("ajsupervisor", "supervisor"), ("ajagent", "agent")):
    files = {name: symbols(o) for name, o in objects(lib).items()}
    owner = {}
    for name, (defined, _) in files.items():
        for sym in defined:
            owner[sym] = name
    graph = collections.defaultdict(set)
    for name, (_, used) in files.items():
        graph[name]
        for sym in used:
            if sym in owner and owner[sym] != name:
                graph[name].add(owner[sym])
    for comp in cycles(graph):
        failures.append("%s/: the files %s call each other" % (side, ", ".join(comp)))
    side_defs = set(owner)
    for name, (_, used) in common.items():
        for sym in sorted(used & side_defs):
            failures.append("common/%s.c calls %s of %s/" % (name, sym, side))

broker = os.path.join(build, "agentjail-broker")
defined, _ = symbols(broker)
for sym in sorted(defined):
    if sym.startswith(("aj_profile_", "aj_run", "aj_spawn_", "aj_doctor", "aj_client_")):
        failures.append("agentjail-broker holds %s (not the broker's code)" % sym)

for f in failures:
    print("layers: " + f)
print("layers: %s" % ("FAILED" if failures else "the files call downward only; the broker holds "
                      "only its own code and common/"))
sys.exit(1 if failures else 0)
