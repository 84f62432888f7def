#!/usr/bin/env python3
"""Helper for bench/ovs/run.sh (python3 stdlib only).

  ovsbench.py gen N                 write N OpenFlow flows (ovs-ofctl add-flows syntax) to stdout
  ovsbench.py run --rundir DIR ...  the measured phases (resync, latency, CPU windows); JSON to -o

The OVS daemons are started and stopped by run.sh. This helper starts and stops
`hvtel serve` itself (by pid, also on error) and restarts ovs-vswitchd once
(kill -9, same command line as run.sh) for the reconnect resync.
"""
import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

VSWITCHD = "/usr/lib/openvswitch-switch/ovs-vswitchd"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- flow generation
def gen_flows(n):
    """n flows over tables 0-9, four shapes, every match unique."""
    out = []
    for i in range(n):
        t = i % 10
        k = i // 10
        hi, lo = (k >> 8) & 255, k & 255
        prio = 100 + (k % 1000)
        port = k % 48 + 1
        nxt = f"resubmit(,{t + 1})" if t < 9 else f"output:{port}"
        shape = (i // 10) % 4
        if shape == 0:
            out.append(f"table={t},priority={prio},ip,nw_dst=10.{t}.{hi}.{lo},actions=output:{port}")
        elif shape == 1:
            out.append(f"table={t},priority={prio},in_port={port},dl_dst=02:00:{t:02x}:{hi:02x}:{lo:02x}:01,"
                       f"actions={nxt}")
        elif shape == 2:
            out.append(f"table={t},priority={prio},tcp,nw_dst=10.{100 + t}.{hi}.{lo},tp_dst={k % 60000 + 1},"
                       f"actions=load:0x{k:x}->NXM_NX_REG0[],{nxt}")
        else:
            out.append(f"table={t},priority={prio},udp,in_port={port},nw_dst=10.{200 + t}.{hi}.{lo},"
                       f"tp_dst={k % 60000 + 1},actions=mod_vlan_vid:{k % 4000 + 1},output:{port}")
    return out


def churn_batch(b, size):
    """Batch b of the 1,000 mods/s load: triplet j = b // 3 adds `size` flows,
    modifies their actions, then deletes them (strict), so the table stays at N."""
    j = (b // 3) % 256
    kind = ("add", "mod", "del")[b % 3]
    t = j % 10
    lines = []
    for i in range(size):
        m = f"table={t},priority=30000,ip,nw_dst=172.16.{j}.{i}"
        if kind == "add":
            lines.append(f"{m},actions=output:1")
        elif kind == "mod":
            lines.append(f"{m},actions=output:2")
        else:
            lines.append(m)
    return kind, "\n".join(lines) + "\n"


# ---------------------------------------------------------------- helpers
def proc_cpu(pid):
    """utime+stime of the whole process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


def parse_metrics(text, bridge="br0"):
    """Sums for the br0 OVS series we need."""
    m = {"flows": 0.0, "changes": 0.0, "up": None, "complete": None, "resyncs": None, "flows_seen": False}
    tag = f'bridge="{bridge}"'
    for line in text.splitlines():
        if not line.startswith("hvtel_ovs_") or tag not in line:
            continue
        name = line.split("{", 1)[0]
        try:
            v = float(line.rsplit(" ", 1)[1])
        except ValueError:
            continue
        if name == "hvtel_ovs_flows":
            m["flows"] += v
            m["flows_seen"] = True
        elif name == "hvtel_ovs_flow_changes_total":
            m["changes"] += v
        elif name == "hvtel_ovs_monitor_up":
            m["up"] = v
        elif name == "hvtel_ovs_monitor_view_complete":
            m["complete"] = v
        elif name == "hvtel_ovs_monitor_resyncs_total":
            m["resyncs"] = v
    return m


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def summary(xs):
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99), "max": max(xs), "min": min(xs),
            "mean": statistics.fmean(xs)}


class Bench:
    def __init__(self, a):
        self.a = a
        self.env = dict(os.environ)
        for k in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"):
            self.env[k] = a.rundir
        self.hvtel = None
        self.hvtel_log = None
        self.result = {"params": {"flows": a.flows, "window_s": a.window, "latency_s": a.latency_seconds,
                                  "rate_per_s": 1000, "batch": 100, "dump_interval_s": a.dump_interval}}

    def log(self, *msg):
        print(f"[{time.strftime('%H:%M:%S')}]", *msg, flush=True)

    def ofctl(self, *args, stdin=None, check=True):
        return subprocess.run(["ovs-ofctl", *args], input=stdin, env=self.env, check=check,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def vswitchd_pid(self):
        with open(os.path.join(self.a.rundir, "ovs-vswitchd.pid")) as f:
            return int(f.read().strip())

    # ------------------------------------------------------------ hvtel
    def start_hvtel(self):
        self.port, self.eport = free_port(), free_port()
        self.hvtel_log = open(os.path.join(self.a.rundir, "hvtel.log"), "a")
        self.hvtel = subprocess.Popen(
            [self.a.hvtel, "serve", "--listen", f"127.0.0.1:{self.port}",
             "--events-listen", f"127.0.0.1:{self.eport}", "--libvirt-uri", "",
             "--ovs-rundir", self.a.rundir, "--ovsdb-sock", os.path.join(self.a.rundir, "db.sock")],
            stdout=self.hvtel_log, stderr=subprocess.STDOUT)
        with open(os.path.join(self.a.rundir, "hvtel.pid"), "w") as f:
            f.write(str(self.hvtel.pid))
        return self.hvtel.pid

    def stop_hvtel(self):
        if self.hvtel and self.hvtel.poll() is None:
            self.hvtel.send_signal(signal.SIGTERM)
            try:
                self.hvtel.wait(10)
            except subprocess.TimeoutExpired:
                self.hvtel.kill()
                self.hvtel.wait()
        rc = self.hvtel.returncode if self.hvtel else None
        self.hvtel = None
        return rc

    def metrics(self):
        return parse_metrics(http_get(f"http://127.0.0.1:{self.port}/metrics"))

    def wait_flows(self, expect, t0, timeout, interval=0.1):
        """Polls /metrics every `interval` until br0's flows sum to `expect`."""
        last = None
        while time.time() - t0 < timeout:
            if self.hvtel is not None and self.hvtel.poll() is not None:
                raise RuntimeError(f"hvtel exited with {self.hvtel.returncode} (see {self.a.rundir}/hvtel.log)")
            try:
                last = self.metrics()
                if last["flows_seen"] and last["flows"] == expect and last["complete"] in (None, 1.0):
                    return time.time() - t0, last
            except OSError:
                pass
            time.sleep(interval)
        raise RuntimeError(f"hvtel did not reach {expect} flows in {timeout} s; last metrics {last}")

    # ------------------------------------------------------------ phases
    def phase_resync(self):
        r = {}
        vsw = self.vswitchd_pid()
        runs = []
        for i in range(self.a.resync_runs):
            c0 = proc_cpu(vsw)
            t0 = time.time()
            pid = self.start_hvtel()
            dt, m = self.wait_flows(self.a.flows, t0, 120)
            c1 = proc_cpu(vsw)
            run = {"seconds": dt, "vswitchd_cpu_s": c1 - c0, "hvtel_cpu_s": proc_cpu(pid),
                   "hvtel_rss_kb": proc_rss_kb(pid), "resyncs": m["resyncs"]}
            runs.append(run)
            self.log(f"hvtel start -> {self.a.flows} flows: {dt:.2f} s (vswitchd cpu {c1 - c0:.2f} s, "
                     f"hvtel rss {run['hvtel_rss_kb']} kB)")
            if i < self.a.resync_runs - 1:
                self.stop_hvtel()
        r["hvtel_start"] = runs
        # one dump-flows for comparison of the vswitchd cost
        c0, t0 = proc_cpu(vsw), time.time()
        self.ofctl("dump-flows", "br0", "--no-names")
        r["one_dump_flows"] = {"seconds": time.time() - t0, "vswitchd_cpu_s": proc_cpu(vsw) - c0}
        self.log(f"one dump-flows: {r['one_dump_flows']['seconds']:.2f} s, "
                 f"vswitchd cpu {r['one_dump_flows']['vswitchd_cpu_s']:.2f} s")
        self.result["resync"] = r

    def phase_vswitchd_restart(self):
        """kill -9 ovs-vswitchd, restart it (flows are gone), re-add the 100k flows
        while hvtel is connected; how long until hvtel's mirror holds them all."""
        r = {}
        before = self.metrics()
        old = self.vswitchd_pid()
        os.kill(old, signal.SIGKILL)
        while os.path.exists(f"/proc/{old}"):
            try:
                with open(f"/proc/{old}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.01)
        t0 = time.time()
        for attempt in range(20):  # the killed daemon may still hold its pidfile lock briefly
            p = subprocess.run(["unshare", "--net", VSWITCHD, f"unix:{self.a.rundir}/db.sock",
                                f"--pidfile={self.a.rundir}/ovs-vswitchd.pid",
                                f"--log-file={self.a.rundir}/ovs-vswitchd.log", "--detach", "--no-chdir"],
                               env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if p.returncode == 0:
                break
            self.log(f"ovs-vswitchd restart attempt {attempt + 1} failed: {p.stderr.strip()[-300:]}")
            time.sleep(0.25)
        else:
            raise RuntimeError("ovs-vswitchd did not restart")
        r["restart_attempts"] = attempt + 1
        # hvtel reconnects and resyncs to an empty table
        while True:
            m = self.metrics()
            if m["resyncs"] is not None and m["resyncs"] > before["resyncs"] and m["up"] == 1 and m["flows"] == 0:
                break
            if time.time() - t0 > 60:
                raise RuntimeError(f"hvtel did not reconnect after vswitchd restart: {m}")
            time.sleep(0.1)
        r["reconnect_s"] = time.time() - t0
        self.log(f"vswitchd restart -> hvtel reconnected, 0 flows: {r['reconnect_s']:.2f} s")
        ta = time.time()
        self.ofctl("add-flows", "br0", self.a.flows_file)
        tb = time.time()
        dt, m = self.wait_flows(self.a.flows, tb, 120)
        r["add_flows_s"] = tb - ta
        r["lag_after_add_flows_s"] = dt
        r["from_add_start_s"] = tb - ta + dt
        r["hvtel_rss_kb"] = proc_rss_kb(self.hvtel.pid)
        self.log(f"re-add {self.a.flows} flows: add-flows {tb - ta:.2f} s, hvtel complete {dt:.2f} s after it "
                 f"(rss {r['hvtel_rss_kb']} kB)")
        self.result["vswitchd_restart"] = r

    def apply_load(self, seconds, stop_evt=None):
        """1,000 mods/s: a batch of 100 every 100 ms. Returns per-batch records."""
        batches = []
        n = int(seconds * 10)
        t0 = time.time()
        for b in range(n):
            due = t0 + b * 0.1
            now = time.time()
            if due > now:
                time.sleep(due - now)
            kind, text = churn_batch(b, 100)
            cmd = {"add": ["add-flows", "br0", "-"], "mod": ["--strict", "mod-flows", "br0", "-"],
                   "del": ["--strict", "del-flows", "br0", "-"]}[kind]
            ts = time.time()
            self.ofctl(*cmd, stdin=text)
            batches.append({"b": b, "kind": kind, "start": ts, "ret": time.time(), "late_ms": (ts - due) * 1000})
        # leave the table as it was: delete the flows of an unfinished triplet
        if len(batches) % 3:
            last = len(batches) - 1
            _, text = churn_batch(3 * (last // 3) + 2, 100)
            self.ofctl("--strict", "del-flows", "br0", "-", stdin=text)
        return batches

    def phase_latency(self):
        events = []  # (arrival wall time, event time_ms, kind)
        scrapes = []  # (wall time, changes sum)
        stop = threading.Event()
        base = self.metrics()["changes"]
        # cursor "now" before the first batch
        tail = http_get(f"http://127.0.0.1:{self.eport}/events?since=now&wait_ms=0&source=ovs").strip().splitlines()
        cursor = json.loads(tail[-1])["cursor"]
        missed = [0]

        def reader():
            nonlocal cursor
            while not stop.is_set():
                try:
                    body = http_get(f"http://127.0.0.1:{self.eport}/events?since={cursor}&wait_ms=500"
                                    f"&max=10000&source=ovs", timeout=10)
                except OSError:
                    continue
                now = time.time()
                lines = body.strip().splitlines()
                t = json.loads(lines[-1])
                cursor = t["cursor"]
                missed[0] += t.get("missed", 0)
                for line in lines[:-1]:
                    e = json.loads(line)
                    if e.get("fields", {}).get("from_resync"):
                        continue
                    events.append((now, e["time_ms"], e["kind"]))

        def scraper():
            while not stop.is_set():
                try:
                    scrapes.append((time.time(), self.metrics()["changes"]))
                except OSError:
                    pass
                time.sleep(self.a.scrape_poll)

        th = [threading.Thread(target=reader, daemon=True), threading.Thread(target=scraper, daemon=True)]
        for t in th:
            t.start()
        vsw, hv = self.vswitchd_pid(), self.hvtel.pid
        c0, h0, w0 = proc_cpu(vsw), proc_cpu(hv), time.time()
        batches = self.apply_load(self.a.latency_seconds)
        time.sleep(2.0)
        stop.set()
        for t in th:
            t.join(12)
        elapsed = time.time() - w0
        final = self.metrics()
        n_changes = 100 * len(batches)
        # events are FIFO: the i-th event belongs to batch i // 100
        lat_arrival, lat_agent, lat_agent_from_start, kinds_ok = [], [], [], True
        want = {"add": "flow_added", "mod": "flow_modified", "del": "flow_deleted"}
        for i, (arr, tms, kind) in enumerate(events[:n_changes]):
            b = batches[i // 100]
            if want[b["kind"]] != kind:
                kinds_ok = False
            lat_arrival.append((arr - b["ret"]) * 1000)
            lat_agent.append(tms - b["ret"] * 1000)
            lat_agent_from_start.append(tms - b["start"] * 1000)
        # /metrics: first scrape whose counter covers the whole batch
        lat_metrics = []
        si = 0
        for k, b in enumerate(batches):
            need = base + 100 * (k + 1)
            while si < len(scrapes) and (scrapes[si][1] < need or scrapes[si][0] < b["ret"]):
                if scrapes[si][1] >= need:
                    break
                si += 1
            if si < len(scrapes):
                lat_metrics.append(max(0.0, scrapes[si][0] - b["ret"]) * 1000)
        ofctl_ms = [(b["ret"] - b["start"]) * 1000 for b in batches]
        r = {
            "batches": len(batches), "changes_applied": n_changes, "events_received": len(events),
            "events_missed": missed[0], "event_kinds_match": kinds_ok,
            "metrics_changes_delta": final["changes"] - base,
            "achieved_rate_per_s": n_changes / (batches[-1]["ret"] - batches[0]["start"]),
            "max_batch_late_ms": max(b["late_ms"] for b in batches),
            "ofctl_ms": summary(ofctl_ms),
            "latency_ms_event_stream": summary(lat_arrival),
            "latency_ms_agent_time": summary(lat_agent),
            "latency_ms_agent_time_from_batch_start": summary(lat_agent_from_start),
            "latency_ms_metrics_batch": summary(lat_metrics),
            "metrics_poll_s": self.a.scrape_poll, "scrapes": len(scrapes),
            "vswitchd_cpu_s": proc_cpu(vsw) - c0, "hvtel_cpu_s": proc_cpu(hv) - h0, "elapsed_s": elapsed,
            "hvtel_rss_kb": proc_rss_kb(hv), "flows_after": final["flows"],
        }
        self.result["latency"] = r
        s = r["latency_ms_event_stream"]
        self.log(f"latency: {len(events)}/{n_changes} events, missed {missed[0]}, rate {r['achieved_rate_per_s']:.0f}/s; "
                 f"event stream p50 {s.get('p50')} p99 {s.get('p99')} ms; agent time p50 "
                 f"{r['latency_ms_agent_time'].get('p50')} p99 {r['latency_ms_agent_time'].get('p99')}; "
                 f"metrics p50 {r['latency_ms_metrics_batch'].get('p50')} p99 {r['latency_ms_metrics_batch'].get('p99')}")

    def cpu_window(self, config, loaded):
        vsw = self.vswitchd_pid()
        hv = None
        if config == "hvtel":
            t0 = time.time()
            hv = self.start_hvtel()
            self.wait_flows(self.a.flows, t0, 120)
        time.sleep(self.a.settle)
        stop = threading.Event()
        dumps = []
        ch0 = children_cpu()

        def dumper():
            # first dump half an interval in, then every interval: window/interval dumps
            nxt = time.time() + self.a.dump_interval / 2
            while True:
                if stop.wait(max(0.0, nxt - time.time())):
                    return
                t = time.time()
                self.ofctl("dump-flows", "br0", "--no-names")
                dumps.append(time.time() - t)
                nxt += self.a.dump_interval

        def scraper():  # Prometheus-like scrape of hvtel every 15 s
            while not stop.wait(15.0):
                try:
                    self.metrics()
                except OSError:
                    pass

        side = None
        if config == "dump-flows":
            side = threading.Thread(target=dumper, daemon=True)
        elif config == "hvtel":
            side = threading.Thread(target=scraper, daemon=True)
        c0, w0 = proc_cpu(vsw), time.time()
        h0 = proc_cpu(hv) if hv else None
        if side:
            side.start()
        if loaded:
            self.apply_load(self.a.window)
            rest = w0 + self.a.window - time.time()
            if rest > 0:
                time.sleep(rest)
        else:
            time.sleep(self.a.window)
        stop.set()
        c1, w1 = proc_cpu(vsw), time.time()
        rec = {"config": config, "load": "1000/s" if loaded else "idle", "wall_s": w1 - w0,
               "vswitchd_cpu_s": c1 - c0}
        if hv:
            rec["hvtel_cpu_s"] = proc_cpu(hv) - h0
            rec["hvtel_rss_kb"] = proc_rss_kb(hv)
            m = self.metrics()
            rec["hvtel_flows"] = m["flows"]
        if side:
            side.join(30)
        if config == "dump-flows":
            rec["dumps"] = len(dumps)
            rec["dump_s"] = summary(dumps)
            rec["ofctl_cpu_s"] = children_cpu() - ch0  # includes the load's ovs-ofctl when loaded
        if hv:
            self.stop_hvtel()
        self.log(f"cpu window {config:10s} {rec['load']:6s}: vswitchd {rec['vswitchd_cpu_s']:.2f} s"
                 + (f", hvtel {rec['hvtel_cpu_s']:.2f} s" if hv else "")
                 + (f", {rec['dumps']} dumps" if config == "dump-flows" else ""))
        return rec

    def phase_cpu(self):
        recs = []
        for loaded in (False, True):
            for config in ("baseline", "hvtel", "dump-flows"):
                recs.append(self.cpu_window(config, loaded))
        out = {"windows": recs, "ratios": {}}
        for load in ("idle", "1000/s"):
            v = {r["config"]: r for r in recs if r["load"] == load}
            a, b, c = (v[k]["vswitchd_cpu_s"] for k in ("baseline", "hvtel", "dump-flows"))
            div = lambda x, y: x / y if y > 0 else None
            out["ratios"][load] = {"hvtel/baseline": div(b, a), "dump-flows/baseline": div(c, a),
                                   "hvtel/dump-flows": div(b, c),
                                   "hvtel_excess_s": b - a, "dump_flows_excess_s": c - a}
        self.result["cpu"] = out

    def run(self):
        try:
            self.phase_resync()
            self.phase_latency()
            self.phase_vswitchd_restart()
            self.stop_hvtel()
            self.phase_cpu()
        finally:
            rc = self.stop_hvtel() if self.hvtel else None
            if self.a.output:
                with open(self.a.output, "w") as f:
                    json.dump(self.result, f, indent=2)
        return self.result


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("n", type=int)
    r = sub.add_parser("run")
    r.add_argument("--rundir", required=True)
    r.add_argument("--hvtel", required=True)
    r.add_argument("--flows", type=int, required=True)
    r.add_argument("--flows-file", required=True)
    r.add_argument("--window", type=float, default=45)
    r.add_argument("--latency-seconds", type=float, default=20)
    r.add_argument("--dump-interval", type=float, default=15)
    r.add_argument("--resync-runs", type=int, default=3)
    r.add_argument("--scrape-poll", type=float, default=0.02)
    r.add_argument("--settle", type=float, default=2.0)
    r.add_argument("-o", "--output")
    a = p.parse_args()
    if a.cmd == "gen":
        sys.stdout.write("\n".join(gen_flows(a.n)) + "\n")
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    Bench(a).run()


if __name__ == "__main__":
    main()
