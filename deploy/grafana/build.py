#!/usr/bin/env python3
"""Builds the Grafana dashboard deploy/grafana/hvtel.json from the panel list below.

  build.py           writes deploy/grafana/hvtel.json
  build.py --check   exits 1 if that file is not what it would write, or if a query names a metric that
                     docs/metrics.md does not document

Drill-down: zone -> rack -> hypervisor -> instance (Nova display name), as template variables, and as links
from the rack, hypervisor and instance tables. Every query is run against a live Prometheus that scraped
hvtel with a guest running, and must return data (tests/vmlab/cases/dashboard_queries.sh).
"""
import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = ROOT / "deploy/grafana/hvtel.json"
METRICS_DOC = ROOT / "docs/metrics.md"
UID = "hvtel-fleet"

DS = {"type": "prometheus", "uid": "${datasource}"}
JOB = 'job=~"(.+/)?hvtel"'
S = 'zone=~"$zone", rack=~"$rack", hypervisor=~"$hypervisor"'
R = "$__rate_interval"
INFO = f'hvtel_instance_info{{{S}, instance_name=~"$instance"}}'
# Joins a series that has instance_id to the instance's Nova display name, and applies the instance filter.
JOIN = f"* on (hypervisor, instance_id) group_left (instance_name) {INFO}"
# The same for the owner of a dedicated pCPU.
OWNER_JOIN = ("* on (hypervisor, owner_instance_id) group_left (instance_name) "
              f'label_replace({INFO}, "owner_instance_id", "$1", "instance_id", "(.+)")')


def link(title, **vars_):
    params = "&".join(f"var-{k}=${{__data.fields.{v}}}" for k, v in vars_.items())
    return {"title": title, "url": f"/d/{UID}/hvtel?{params}&${{__url_time_range}}&${{datasource:queryparam}}"}


def target(expr, legend="", instant=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend}
    if instant:
        t.update({"instant": True, "range": False, "format": "table"})
    return t


def timeseries(title, description, targets, unit="short", w=12):
    return {"type": "timeseries", "title": title, "description": description, "targets": targets, "w": w,
            "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title, description, expr, unit="short", red_above=None):
    steps = [{"color": "green", "value": None}]
    if red_above is not None:
        steps.append({"color": "red", "value": red_above})
    return {"type": "stat", "title": title, "description": description, "targets": [target(expr)], "w": 4,
            "h": 4, "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
                                    "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}}


def table(title, description, targets, links=None, hide=(), w=12):
    fields = {"Time": True, "__name__": True, "job": True, "instance": True, "endpoint": True, "namespace": True,
              "pod": True, "service": True, "container": True}
    fields.update({h: True for h in hide})
    panel = {"type": "table", "title": title, "description": description, "targets": targets, "w": w,
             "fieldConfig": {"defaults": {}, "overrides": []},
             "transformations": [{"id": "merge", "options": {}},
                                 {"id": "organize", "options": {"excludeByName": fields}}],
             "options": {"showHeader": True}}
    if links:
        panel["fieldConfig"]["defaults"]["links"] = links
    return panel


def row(title):
    return {"type": "row", "title": title}


PANELS = [
    row("Fleet"),
    stat("Hypervisors up", "Agents Prometheus scrapes successfully.", f"sum(up{{{JOB}, {S}}})"),
    stat("Hypervisors down", "Agents that do not answer (HypervisorDown, RackDown).",
         f"count(up{{{JOB}, {S}}} == 0) or vector(0)", red_above=1),
    stat("Instances running", "Instances the agents know (libvirt domains and VMMs found in procfs).",
         f"count(hvtel_instance_info{{{S}}})"),
    stat("Pinning violations", "Static pinning violations holding now (instance x class).",
         f"sum(hvtel_pinning_violation_active{{{S}}})", red_above=1),
    stat("Dirty flows", "Dirty OpenFlow flows now, all rules but the monitor's own gap.",
         f'sum(hvtel_ovs_dirty_flows{{{S}, rule!="flow_monitor_gap"}})', red_above=1),
    stat("Series per hypervisor", "Samples per scrape, the largest agent (the series budget).",
         f"max(scrape_samples_scraped{{{JOB}, {S}}})"),
    table("Racks", "Agents up out of the targets of each rack. Click a rack to drill down.",
          [target(f"sum by (zone, rack) (up{{{JOB}, {S}}})", instant=True),
           target(f"count by (zone, rack) (up{{{JOB}, {S}}})", instant=True)],
          links=[link("Rack ${__data.fields.rack}", zone="zone", rack="rack")]),
    table("Hypervisors", "Agents, with their instance counts. Click a hypervisor to drill down.",
          [target(f"sum by (zone, rack, hypervisor) (up{{{JOB}, {S}}})", instant=True),
           target(f"count by (zone, rack, hypervisor) (hvtel_instance_info{{{S}}})", instant=True)],
          links=[link("Hypervisor ${__data.fields.hypervisor}", zone="zone", rack="rack",
                      hypervisor="hypervisor")]),

    row("Instances"),
    table("Instances", "Nova attributes from the domain metadata (empty on hosts without libvirt). "
          "Click an instance to drill down.",
          [target(INFO, instant=True)],
          links=[link("Instance ${__data.fields.instance_name}", zone="zone", rack="rack",
                      hypervisor="hypervisor", instance="instance_name")],
          hide=("Value",), w=24),

    row("VM exits"),
    timeseries("Exits by reason", "VM exits per second by vendor exit reason (top 10).",
               [target(f"topk(10, sum by (reason) (rate(hvtel_vcpu_exits_total{{{S}}}[{R}]) {JOIN}))",
                       "{{reason}}")], unit="ops", w=8),
    timeseries("Exits by instance", "VM exits per second (top 10 instances).",
               [target(f"topk(10, sum by (hypervisor, instance_name) "
                       f"(rate(hvtel_vcpu_exits_total{{{S}}}[{R}]) {JOIN}))",
                       "{{instance_name}} on {{hypervisor}}")], unit="ops", w=8),
    # The agent sums this histogram over its host's instances (the series budget, docs/metrics.md), so
    # the instance filter does not apply; with --exit-handling-per-instance the same query still sums.
    timeseries("Exit handling time, p99", "From a VM exit to the next entry of the vCPU, by class "
               "(halt is guest idle time and left out), over the selected hosts' instances.",
               [target(f"histogram_quantile(0.99, sum by (class, le) "
                       f'(rate(hvtel_vcpu_exit_handling_seconds_bucket{{{S}, class!="halt"}}[{R}])))',
                       "{{class}}")], unit="s", w=8),

    row("Exits to the VMM"),
    timeseries("Exits to the VMM by reason", "KVM_RUN returning to QEMU per second, by KVM_EXIT_* reason.",
               [target(f"sum by (reason) (rate(hvtel_vcpu_userspace_exits_total{{{S}}}[{R}]) {JOIN})",
                       "{{reason}}")], unit="ops"),
    timeseries("VMM handling time", "Time QEMU took before re-entering the guest (p50, p99).",
               [target(f"histogram_quantile({q}, sum by (le) "
                       f"(rate(hvtel_vcpu_vmm_handling_seconds_bucket{{{S}}}[{R}]) {JOIN}))", f"p{p}")
                for q, p in (("0.5", "50"), ("0.99", "99"))], unit="s"),

    row("vCPU scheduling"),
    timeseries("Run-queue latency, p99", "From wakeup (or preemption) to running on a pCPU, per instance.",
               [target(f"topk(10, histogram_quantile(0.99, sum by (hypervisor, instance_name, le) "
                       f"(rate(hvtel_vcpu_runqueue_latency_seconds_bucket{{{S}}}[{R}]) {JOIN})))",
                       "{{instance_name}} on {{hypervisor}}")], unit="s", w=8),
    timeseries("Wait share", "Share of the vCPUs' runnable time spent waiting for a pCPU (host steal).",
               [target(f"topk(10, sum by (hypervisor, instance_name) "
                       f"(rate(hvtel_vcpu_wait_seconds_total{{{S}}}[{R}]) {JOIN}) / sum by (hypervisor, "
                       f"instance_name) ((rate(hvtel_vcpu_run_seconds_total{{{S}}}[{R}]) + "
                       f"rate(hvtel_vcpu_wait_seconds_total{{{S}}}[{R}])) {JOIN}))",
                       "{{instance_name}} on {{hypervisor}}")], unit="percentunit", w=8),
    timeseries("Preemptions and migrations", "Involuntary switches and moves between pCPUs per second.",
               [target(f"topk(10, sum by (hypervisor, instance_name) "
                       f"(rate(hvtel_vcpu_{m}_total{{{S}}}[{R}]) {JOIN}))",
                       f"{{{{instance_name}}}} {m}") for m in ("preemptions", "migrations")], unit="ops", w=8),

    row("CPU pinning"),
    table("Pinning violations now", "Instances whose pinning breaks their intent, by class "
          "(docs/pinning.md).",
          [target(f"hvtel_pinning_violation_active{{{S}}} {JOIN} == 1", instant=True)], hide=("Value",)),
    timeseries("Time in violation", "Seconds per second in violation, by class.",
               [target(f"sum by (class) (rate(hvtel_pinning_violation_seconds_total{{{S}}}[{R}]) {JOIN})",
                       "{{class}}")], unit="percentunit"),
    timeseries("Intruders on dedicated pCPUs", "Share of a dedicated pCPU other tasks take, by pCPU, owner "
               "and intruder kind (top 10).",
               [target(f"topk(10, sum by (hypervisor, cpu, owner_instance_id, intruder) "
                       f"(rate(hvtel_pcpu_foreign_seconds_total{{{S}}}[{R}])) {OWNER_JOIN})",
                       "cpu {{cpu}} of {{instance_name}}: {{intruder}}")], unit="percentunit", w=24),

    row("Open vSwitch"),
    timeseries("OpenFlow flows", "Flows in the agent's mirror of each bridge.",
               [target(f"sum by (hypervisor, bridge) (hvtel_ovs_flows{{{S}}})", "{{bridge}} on {{hypervisor}}")],
               w=8),
    timeseries("Flow changes", "Flows added, modified and deleted per second.",
               [target(f"sum by (event) (rate(hvtel_ovs_flow_changes_total{{{S}}}[{R}]))", "{{event}}")],
               unit="ops", w=8),
    timeseries("Dirty flows by rule", "Dirty flows per rule (docs/dirty-flows.md).",
               [target(f"sum by (rule) (hvtel_ovs_dirty_flows{{{S}}})", "{{rule}}")], w=8),
    table("Dirty flows now", "Bridges with dirty flows, per rule.",
          [target(f"sum by (hypervisor, bridge, rule) (hvtel_ovs_dirty_flows{{{S}}}) > 0", instant=True)]),
    timeseries("Upcalls", "Kernel datapath upcalls per second: by instance (VIFs) and by port (top 10).",
               [target(f"sum by (hypervisor, instance_name, cmd) "
                       f"(rate(hvtel_ovs_upcalls_total{{{S}}}[{R}]) {JOIN})", "{{instance_name}} {{cmd}}"),
                target(f"topk(10, sum by (hypervisor, port, cmd) (rate(hvtel_ovs_upcalls_total{{{S}}}[{R}])))",
                       "{{port}} {{cmd}}")], unit="ops"),
    timeseries("Megaflows", "Datapath flow installs, updates and deletes per second, and upcalls not queued.",
               [target(f"sum by (op) (rate(hvtel_ovs_datapath_flow_changes_total{{{S}}}[{R}]))", "{{op}}"),
                target(f"sum(rate(hvtel_ovs_upcall_failures_total{{{S}}}[{R}]))", "upcall failures")],
               unit="ops", w=24),

    row("Agent health and cost"),
    table("Probes", "Each probe's state over the selected hypervisors: 0 where any of them lacks it "
          "(hvtel status says why).",
          [target(f"min by (probe, attach) (hvtel_probe_attached{{{S}}})", instant=True)], w=8),
    timeseries("Connections", "libvirt, OVSDB and flow-monitor connections (1 up).",
               [target(f'label_replace(min by (hypervisor) (hvtel_libvirt_up{{{S}}}), "source", "libvirt", "", "")'
                       f' or label_replace(min by (hypervisor) (hvtel_ovsdb_up{{{S}}}), "source", "ovsdb", "", "")'
                       f" or label_replace(min by (hypervisor) (hvtel_ovs_monitor_up{{{S}}}), "
                       '"source", "flow monitor", "", "")', "{{source}} on {{hypervisor}}")], w=8),
    timeseries("Lost events and slots", "Kernel events not counted, by reason, and the share of vCPU slots "
               "in use.",
               [target(f"sum by (reason) (rate(hvtel_bpf_lost_events_total{{{S}}}[{R}]))", "lost: {{reason}}"),
                target(f"max(hvtel_vcpu_slots_used{{{S}}} / hvtel_vcpu_slots{{{S}}})", "slots used (share)")],
               w=8),
    timeseries("Agent CPU", "CPU seconds per second: the agent's process, and its BPF programs in the kernel "
               "(needs kernel.bpf_stats_enabled=1).",
               [target(f"rate(process_cpu_seconds_total{{{JOB}, {S}}}[{R}])", "{{hypervisor}} user space"),
                target(f"sum by (hypervisor) (rate(hvtel_bpf_program_run_seconds_total{{{S}}}[{R}]))",
                       "{{hypervisor}} BPF")], unit="percentunit", w=8),
    timeseries("BPF cost per event", "Mean time in each BPF program per run (needs kernel.bpf_stats_enabled=1).",
               [target(f"sum by (program) (rate(hvtel_bpf_program_run_seconds_total{{{S}}}[{R}])) / "
                       f"sum by (program) (rate(hvtel_bpf_program_runs_total{{{S}}}[{R}]))", "{{program}}")],
               unit="s", w=8),
    timeseries("Agent memory", "Resident memory of the agent's process.",
               [target(f"process_resident_memory_bytes{{{JOB}, {S}}}", "{{hypervisor}}")], unit="bytes", w=4),
    timeseries("Scrape time", "How long Prometheus takes to scrape the agent.",
               [target(f"scrape_duration_seconds{{{JOB}, {S}}}", "{{hypervisor}}")], unit="s", w=4),
]


def variable(name, label, query):
    return {"name": name, "label": label, "type": "query", "datasource": DS, "definition": query,
            "query": {"query": query, "refId": f"hvtel-{name}"}, "refresh": 2, "includeAll": True,
            "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "sort": 1,
            "hide": 0, "options": [], "regex": "", "skipUrlSync": False}


VARIABLES = [
    {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
     "current": {}, "hide": 0, "options": [], "refresh": 1, "regex": "", "skipUrlSync": False},
    variable("zone", "Zone", f"label_values(up{{{JOB}}}, zone)"),
    variable("rack", "Rack", f'label_values(up{{{JOB}, zone=~"$zone"}}, rack)'),
    variable("hypervisor", "Hypervisor", f'label_values(up{{{JOB}, zone=~"$zone", rack=~"$rack"}}, hypervisor)'),
    variable("instance", "Instance", f"label_values(hvtel_instance_info{{{S}}}, instance_name)"),
]


def layout(panels):
    out, x, y, h_row, pid = [], 0, 0, 0, 1
    for p in panels:
        p = dict(p)
        if p["type"] == "row":
            if x:
                y += h_row
            p.update({"collapsed": False, "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
            y, x, h_row = y + 1, 0, 0
        else:
            w, h = p.pop("w"), p.pop("h", 8)
            if x + w > 24:
                x, y, h_row = 0, y + h_row, 0
            p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            p["datasource"] = DS
            for i, t in enumerate(p["targets"]):
                t["refId"] = chr(ord("A") + i)
            x, h_row = x + w, max(h_row, h)
        p["id"] = pid
        pid += 1
        out.append(p)
    return out


def dashboard():
    return {
        "title": "hvtel: hypervisors",
        "uid": UID,
        "description": "KVM hypervisors watched by hvtel: fleet, rack, hypervisor and instance drill-down.",
        "tags": ["hvtel", "kvm", "openstack"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": []},
        "links": [{"title": "Runbooks", "type": "link", "targetBlank": True,
                   "url": "https://github.com/hvtel/hvtel/tree/main/docs/runbooks"}],
        "templating": {"list": VARIABLES},
        "panels": layout(PANELS),
    }


def render():
    return json.dumps(dashboard(), indent=2, sort_keys=False) + "\n"


def undocumented_metrics(text):
    documented = set(re.findall(r"`(hvtel_[a-z0-9_]+)`", METRICS_DOC.read_text()))
    used = set(re.findall(r"\b(hvtel_[a-z0-9_]+)", text))
    return sorted(m for m in used
                  if re.sub(r"_(bucket|count|sum)$", "", m) not in documented and m not in documented)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text = render()
    if args.check:
        bad = undocumented_metrics(text)
        if bad:
            print(f"{TARGET.relative_to(ROOT)}: metrics not in docs/metrics.md: {', '.join(bad)}", file=sys.stderr)
            return 1
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run deploy/grafana/build.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
