#!/usr/bin/env python3
"""Checks the layering of agent/ (docs/architecture.md) over the include graph.

  check_layers.py [ROOT]      check the tree at ROOT (default: this checkout)
  check_layers.py --self-test plant each kind of violation in a copy and expect it found

Rules:
  1. Every agent/ source belongs to one component (COMPONENTS); an include of
     "dir/file.h" names the component of dir/. Only the component itself and
     the ones it may use (USES) may be included; include/hvtel/ is everyone's.
  2. USES points down or sideways within a layer, never up, and has no cycle.
  3. Every quoted include resolves to a file of the tree (no stale paths).
  4. bpf/ includes nothing from agent/ (the ABI is include/hvtel/abi.h).
  5. No build file under tests/, bench/ or fuzz/ compiles agent sources: tests
     link the agent's libraries.
  6. Every test directory mirrors agent/: tests/<area>/ holds the tests of
     agent/<area>/ (TEST_INFRA: helpers, the test VMM, the lab, deploy/, and
     tests of the agent from outside beside their area).
Exit status 1 and one line per violation when any rule is broken.
"""
import os
import re
import shutil
import sys
import tempfile

LAYERS = ["base", "features", "cli", "app"]  # bottom-up

COMPONENTS = {  # component (directory under agent/) -> layer
    "base/util": "base",
    "base/model": "base",
    "base/metrics": "base",
    "base/http": "base",
    "base/bpf": "base",
    "base/web": "base",
    "discovery": "features",
    "kvm": "features",
    "pinning": "features",
    "sched": "features",
    "libvirt": "features",
    "events": "features",
    "ovs/openflow": "features",
    "ovs/ovsdb": "features",
    "ovs/rules": "features",
    "ovs/datapath": "features",
    "ovs/service": "features",
    "cli": "cli",
    "app": "app",
}

BASE = ["base/util", "base/model", "base/metrics", "base/http", "base/bpf", "base/web"]
FEATURES = [c for c, layer in COMPONENTS.items() if layer == "features"]

USES = {  # what each component may include besides itself
    "base/util": [],
    "base/model": ["base/util"],
    "base/metrics": ["base/util"],
    "base/http": ["base/util"],
    "base/bpf": ["base/util"],
    "base/web": ["base/util", "base/metrics"],
    "discovery": BASE,
    "kvm": BASE + ["discovery"],
    "pinning": BASE,
    "sched": BASE + ["discovery", "pinning"],
    "libvirt": BASE,
    "events": BASE + ["pinning"],
    "ovs/openflow": BASE,
    "ovs/ovsdb": BASE,
    "ovs/rules": BASE + ["ovs/ovsdb"],
    "ovs/datapath": BASE,
    "ovs/service": BASE + ["ovs/openflow", "ovs/ovsdb", "ovs/rules"],
    "cli": BASE + ["events"],
    "app": BASE + FEATURES + ["cli"],
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
AGENT_SOURCE = re.compile(r"(?:\$\{CMAKE_SOURCE_DIR\}|\.\./)+/?agent/\S+\.(?:cpp|cc|c)\b")


# Test directories that mirror no agent/ directory (with everything under them).
TEST_INFRA = {"support", "vmm", "vmlab", "deploy", "libvirt/e2e"}


def component_of(path):
    """The component of a path relative to agent/, or None."""
    best = None
    for comp in COMPONENTS:
        if path == comp or path.startswith(comp + "/"):
            if best is None or len(comp) > len(best):
                best = comp
    return best


def check_table(errors):
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    for comp, uses in USES.items():
        for dep in uses:
            if rank[COMPONENTS[dep]] > rank[COMPONENTS[comp]]:
                errors.append(f"USES: {comp} ({COMPONENTS[comp]}) may not use {dep} ({COMPONENTS[dep]}): upward")
    state = {}

    def visit(comp, path):
        if state.get(comp) == "done":
            return
        if state.get(comp) == "open":
            errors.append("USES: cycle " + " -> ".join(path + [comp]))
            return
        state[comp] = "open"
        for dep in USES[comp]:
            visit(dep, path + [comp])
        state[comp] = "done"

    for comp in USES:
        visit(comp, [])


def sources(root, top):
    for dirpath, _, files in os.walk(os.path.join(root, top)):
        for name in sorted(files):
            if name.endswith((".h", ".cpp", ".c", ".hpp")):
                yield os.path.join(dirpath, name)


def check_tree(root):
    errors = []
    check_table(errors)
    agent = os.path.join(root, "agent")
    for path in sources(root, "agent"):
        rel = os.path.relpath(path, agent)
        comp = component_of(rel)
        if comp is None:
            errors.append(f"agent/{rel}: in no component (add its directory to COMPONENTS)")
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        for inc in INCLUDE.findall(text):
            if inc.startswith("hvtel/"):
                if not os.path.exists(os.path.join(root, "include", inc)) and not inc.endswith("version.h"):
                    errors.append(f"agent/{rel}: includes \"{inc}\", which include/ does not have")
                continue
            if inc.endswith(".skel.h"):
                continue  # generated from bpf/ by the build
            target = os.path.join(agent, inc)
            if not os.path.exists(target):
                if not os.path.exists(os.path.join(os.path.dirname(path), inc)):
                    errors.append(f"agent/{rel}: includes \"{inc}\", which does not exist")
                continue
            dep = component_of(inc)
            if dep is None or dep == comp:
                continue
            if dep not in USES[comp]:
                errors.append(f"agent/{rel}: {comp} ({COMPONENTS[comp]}) includes \"{inc}\" of {dep} "
                              f"({COMPONENTS[dep]}), which it may not use")
    for path in sources(root, "bpf"):
        for inc in INCLUDE.findall(open(path, encoding="utf-8", errors="replace").read()):
            if "agent/" in inc:
                errors.append(f"{os.path.relpath(path, root)}: includes \"{inc}\"; shared types go in include/hvtel/abi.h")
    for top in ("tests", "bench", "fuzz"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if name != "CMakeLists.txt" and not name.endswith(".cmake"):
                    continue
                path = os.path.join(dirpath, name)
                for line_no, line in enumerate(open(path, encoding="utf-8"), 1):
                    if line.lstrip().startswith("#"):
                        continue
                    m = AGENT_SOURCE.search(line)
                    if m:
                        errors.append(f"{os.path.relpath(path, root)}:{line_no}: compiles the agent source "
                                      f"{m.group(0)}; link its library instead")
    tests = os.path.join(root, "tests")
    for dirpath, _, files in os.walk(tests):
        rel = os.path.relpath(dirpath, tests)
        if rel == "." or "CMakeLists.txt" not in files:
            continue
        if any(rel == d or rel.startswith(d + "/") for d in TEST_INFRA):
            continue
        if not os.path.isdir(os.path.join(root, "agent", rel)):
            errors.append(f"tests/{rel}/: mirrors no agent/{rel}/; tests of agent/X/ go in tests/X/")
    return errors


def self_test(root):
    """Each planted violation must be reported; the unplanted copy must pass."""
    plants = [
        ("agent/base/util/strings.cpp", '#include "pinning/intent.h"\n', "base/util (base) includes"),
        ("agent/pinning/intent.cpp", '#include "app/serve.h"\n', "pinning (features) includes"),
        ("agent/kvm/exit_reasons.cpp", '#include "kvm/no_such_header.h"\n', "does not exist"),
        ("bpf/vcpu_exits.bpf.c", '#include "../agent/kvm/exit_reasons.h"\n', "shared types go in"),
        ("tests/kvm/CMakeLists.txt", "add_executable(x ${CMAKE_SOURCE_DIR}/agent/kvm/exit_reasons.cpp)\n",
         "compiles the agent source"),
        ("tests/integration/CMakeLists.txt", "# a tier, not an area\n", "mirrors no agent/integration/"),
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for top in ("agent", "bpf", "include", "tests", "bench", "fuzz"):
            shutil.copytree(os.path.join(root, top), os.path.join(tmp, top),
                            ignore=shutil.ignore_patterns("testdata", "node_modules", "schema"))
        clean = check_tree(tmp)
        if clean:
            print("self-test: the unplanted tree fails:\n  " + "\n  ".join(clean))
            failures += 1
        for rel, line, expect in plants:
            path = os.path.join(tmp, rel)
            created = not os.path.exists(path)
            if created:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            original = "" if created else open(path).read()
            open(path, "w").write(line + original)
            found = [e for e in check_tree(tmp) if expect in e]
            if created:
                os.remove(path)
            else:
                open(path, "w").write(original)
            print(f"self-test: {rel}: {'found' if found else 'MISSED'}: {line.strip()}")
            failures += not found
    return failures


def main():
    args = sys.argv[1:]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if args and args[0] == "--self-test":
        return 1 if self_test(args[1] if len(args) > 1 else here) else 0
    root = args[0] if args else here
    errors = check_tree(root)
    for e in errors:
        print(e)
    n = sum(1 for _ in sources(root, "agent"))
    print(f"check_layers: {n} agent sources, {len(COMPONENTS)} components, "
          f"{len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
