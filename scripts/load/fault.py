#!/usr/bin/env python3
"""The fault test: a bounded load through nginx while parts of the cluster fail.

Run by `./scripts/cluster fault` (which starts the cluster first). Each demo
player is one browser, on its own loopback address (127.0.0.N), so nginx and
the nodes see separate clients as they would in production. Every player
signs in, views pages, creates and edits goals and starts a Steam sync,
with a short pause between requests. Meanwhile node 2 is killed (SIGKILL)
and started again, the replica is stopped and started, and Redis is
restarted. At the end every acknowledged write is looked for in the
primary, and the figures are printed. Exits 1 when a target is missed:
a lost acknowledged write, a 5xx other than one in flight on the killed
node, or a user signed out by the node kill.

Only the standard library is used.
"""

import argparse
import glob
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict

PASSWORD = "questline demo password"
# The fake Steam's demo player; player n is this plus n.
DEMO_STEAM_ID = 76561198000000042
PAGES = ["/dashboard", "/library", "/library?sort=playtime", "/achievements", "/stats", "/leaderboards", "/community"]
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


class Browser:
    """One user's browser: its own source address, cookies and connection."""

    def __init__(self, host, port, source_ip, log):
        self.host, self.port, self.source_ip, self.log = host, port, source_ip, log
        self.cookies = {}
        self.conn = None

    def _connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=15, source_address=(self.source_ip, 0))
        return self.conn

    def request(self, method, path, body=None, content_type=None, kind="page"):
        headers = {"Host": f"{self.host}:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = content_type or "application/x-www-form-urlencoded"
        started = time.monotonic()
        try:
            while True:
                reused = self.conn is not None
                try:
                    conn = self._connection()
                    conn.request(method, path, body=body, headers=headers)
                    res = conn.getresponse()
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    # As browsers do: a kept-alive connection that closed
                    # before any answer (nginx's old worker after a reload)
                    # never delivered the request, so it is sent again, once,
                    # on a new one.
                    if not reused:
                        raise
                    self.close()
            text = res.read().decode("utf-8", "replace")
            status, location, upstream = res.status, res.getheader("Location", ""), res.getheader("X-Upstream", "")
            for raw in res.msg.get_all("Set-Cookie") or []:
                pair, _, attrs = raw.partition(";")
                name, _, value = pair.strip().partition("=")
                if "max-age=0" in attrs.lower().replace(" ", "") or not value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
            if res.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            status, location, upstream, text = 0, "", "", str(e)
        self.log.append((started, time.monotonic(), method, path, status, upstream, kind))
        return status, location, text

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def multipart(fields):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


class Player(threading.Thread):
    def __init__(self, n, args, stop, shared):
        super().__init__(daemon=True)
        url = urllib.parse.urlparse(args.base)
        self.n, self.name = n, f"player{n}"
        self.log = []
        self.browser = Browser(url.hostname, url.port, f"127.0.0.{10 + n}", self.log)
        self.stop, self.shared = stop, shared
        self.rng = random.Random(n)
        self.seq = 0
        self.goals = {}  # id -> last acknowledged name
        self.maybe = defaultdict(set)  # goal id -> edits sent but not acknowledged
        self.created_acked = []  # (name, id when found in the list)
        self.acked_writes = 0
        self.signed_in = False
        self.signed_out_at = []  # times a signed-in page found the session gone
        self.sign_ins = 0
        self.synced = False

    def token(self, page):
        status, _, text = self.browser.request("GET", page, kind="form")
        m = CSRF.search(text) if status == 200 else None
        return m.group(1) if m else None

    def sign_in(self):
        token = self.token("/login")
        if token is None:
            return False
        if self.rng.random() < 0.5:
            status, location = self.sign_in_through_steam(token)
        else:
            body = urllib.parse.urlencode({"login": self.name, "password": PASSWORD, "csrf_token": token})
            status, location, _ = self.browser.request("POST", "/login", body, kind="sign-in")
        if status == 429:
            # As a person would: wait, then try again.
            time.sleep(5)
        self.signed_in = status == 303 and "/login" not in location
        self.sign_ins += self.signed_in
        return self.signed_in

    def sign_in_through_steam(self, token):
        """As a person would: the Steam button, the fake Steam's page (picking
        this player's own SteamID), and the way back."""
        body = urllib.parse.urlencode({"intent": "signin", "csrf_token": token})
        status, location, _ = self.browser.request("POST", "/auth/steam", body, kind="sign-in")
        if status != 303:
            return status, location
        provider = urllib.parse.urlparse(location)
        return_to = urllib.parse.parse_qs(provider.query).get("openid.return_to", [""])[0]
        query = urllib.parse.urlencode({"player": DEMO_STEAM_ID + self.n, "return_to": return_to})
        try:
            steam = http.client.HTTPConnection(provider.hostname, provider.port, timeout=10)
            steam.request("GET", f"/openid/approve?{query}")
            answer = steam.getresponse()
            answer.read()
            back = answer.getheader("Location", "")
            steam.close()
        except (OSError, http.client.HTTPException):
            return 0, ""
        if answer.status != 302:
            return answer.status, ""
        back = urllib.parse.urlparse(back)
        return self.browser.request("GET", f"{back.path}?{back.query}", kind="sign-in")[:2]

    def sign_out(self):
        token = self.token("/dashboard")
        if token is None:
            return
        self.browser.request("POST", "/logout", urllib.parse.urlencode({"csrf_token": token}), kind="sign-out")
        self.signed_in = False

    def view(self):
        status, location, _ = self.browser.request("GET", self.rng.choice(PAGES))
        if status == 303 and "/login" in location:
            self.signed_out_at.append(time.monotonic())
            self.signed_in = False

    def save_goal(self):
        self.seq += 1
        name = f"fault {self.name} {self.seq}"
        fields = [("name", name), ("condition_type", "playtime"), ("hours", str(self.rng.randint(1, 500)))]
        if len(self.goals) < 3:
            token = self.token("/achievements/new")
            if token is None:
                return
            body, ctype = multipart([("csrf_token", token)] + fields)
            status, location, _ = self.browser.request("POST", "/achievements", body, ctype, kind="write")
            if status == 303 and location.startswith("/achievements"):
                self.acked_writes += 1
                _, _, text = self.browser.request("GET", "/achievements", kind="form")
                gid = None
                for found_id, found in re.findall(r'data-id="(\d+)".*?class="achievement-name">([^<]*)<', text, re.S):
                    if found == name:
                        gid = int(found_id)
                        self.goals[gid] = name
                self.created_acked.append((name, gid))
        else:
            gid = self.rng.choice(list(self.goals))
            token = self.token(f"/achievements/{gid}/edit")
            if token is None:
                return
            body, ctype = multipart([("csrf_token", token)] + fields)
            status, location, _ = self.browser.request("POST", f"/achievements/{gid}", body, ctype, kind="write")
            if status == 303 and location.startswith("/achievements"):
                self.acked_writes += 1
                self.goals[gid] = name
                self.maybe[gid].clear()
            else:
                self.maybe[gid].add(name)

    def sync(self):
        token = self.token("/settings/steam")
        if token is None:
            return
        status, _, _ = self.browser.request(
            "POST", "/settings/steam/sync", urllib.parse.urlencode({"csrf_token": token}), kind="write"
        )
        self.synced = status == 303

    def run(self):
        # People arrive over the first seconds, not in one instant.
        time.sleep(self.n * 0.2)
        while not self.stop.is_set():
            try:
                if not self.signed_in:
                    if not self.sign_in():
                        time.sleep(0.2)
                        continue
                r = self.rng.random()
                if not self.synced and r < 0.1:
                    self.sync()
                elif r < 0.65:
                    self.view()
                elif r < 0.995:
                    self.save_goal()
                else:
                    self.sign_out()
            except Exception as e:  # a bug in this script must not look like a pass
                self.shared["errors"].append(f"{self.name}: {e!r}")
                time.sleep(0.2)
            time.sleep(self.rng.uniform(0.02, 0.08))
        self.browser.close()


def get(url, timeout=3):
    u = urllib.parse.urlparse(url)
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        c.request("GET", u.path or "/")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, body
    except OSError:
        return 0, ""


def until(check, limit=120):
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            return None
        time.sleep(0.05)
    return time.monotonic()


def psql(url, sql):
    out = subprocess.run(["psql", url, "-tAF", "\t", "-c", sql], check=True, capture_output=True, text=True)
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def cluster(args, *what):
    subprocess.run([args.cluster, *what], check=True, stdout=subprocess.DEVNULL)


def print_node_errors(logs):
    """What the nodes logged for the requests they failed (error pages log
    one warning or error each), counted by route and first line."""
    seen = Counter()
    for path in sorted(glob.glob(os.path.join(logs, "node*.log"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("message") in ("dependency unavailable", "internal error"):
                    route = entry.get("span", {}).get("http.route", "-")
                    first = str(entry.get("error", "")).splitlines()[0][:100] if entry.get("error") else "-"
                    seen[(os.path.basename(path), route, entry["message"], first)] += 1
    for (node, route, message, first), n in seen.most_common(10):
        print(f"  {node} logged {n} x {message} on {route}: {first}")


class Run:
    """One fault test: the load, the faults injected into it, and what the
    players saw. Each step of `main` is a method."""

    def __init__(self, args):
        self.args = args
        self.nodes = [int(x) for x in args.nodes.split()]
        self.stop = threading.Event()
        self.shared = {"errors": []}
        self.players = [Player(n, args, self.stop, self.shared) for n in range(1, args.players + 1)]
        self.faults = []  # (name, started, healed or None, node port or None)
        # Connections each server holds (client backends, less this query's own).
        self.peak = Counter()
        netloc = urllib.parse.urlparse(args.primary).netloc.split("@")[1]
        self.replica_url = args.primary.replace(netloc, f"127.0.0.1:{args.replica_port}")
        self.t0 = None
        self.ended = None

    def node_url(self, port):
        return f"http://127.0.0.1:{port}"

    def start_load(self):
        self.t0 = time.monotonic()
        for pl in self.players:
            pl.start()
        threading.Thread(target=self.sample_connections, daemon=True).start()

    def sample_connections(self):
        while not self.stop.is_set():
            for name, url in (("primary", self.args.primary), ("replica", self.replica_url)):
                try:
                    n = int(psql(url, "SELECT count(*) - 1 FROM pg_stat_activity WHERE backend_type = 'client backend'")[0][0])
                    self.peak[name] = max(self.peak[name], n)
                except (subprocess.CalledProcessError, IndexError, ValueError):
                    pass
            self.stop.wait(1)

    def at(self, offset):
        delay = self.t0 + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def replica_used_everywhere(self):
        return all("questline_replica_usable 1" in get(self.node_url(port) + "/metrics")[1] for port in self.nodes)

    def inject(self, name, share, begin, end, after, healed_when, node=None):
        """At `share` of the run, `begin` the fault, `end` it `after` seconds
        later (if any), and time until `healed_when` holds."""
        self.at(self.args.duration * share)
        started = time.monotonic()
        cluster(self.args, *begin)
        if end:
            self.at(self.args.duration * share + after)
            cluster(self.args, *end)
        self.faults.append((name, started, until(lambda: healed_when(started), 60), node))

    def worker_takes_jobs(self, started):
        """Healed when the new worker takes jobs: one claimed since the
        SIGTERM (the old worker claims nothing after it), or none waiting."""
        since = time.time() - (time.monotonic() - started)
        return bool(psql(self.args.primary,
                         f"SELECT 1 WHERE EXISTS (SELECT 1 FROM jobs WHERE started_at > to_timestamp({since})) "
                         "OR NOT EXISTS (SELECT 1 FROM jobs WHERE status = 'queued' AND run_after <= now())"))

    def answers_again(self, port):
        """Healed when nginx sends requests to the node again."""
        return lambda started: any(e[0] > started and e[5].endswith(f":{port}") and e[4] < 500
                                   for pl in self.players for e in list(pl.log)[-50:])

    def inject_faults(self):
        # Every node must be reading from the replica before the replica fault.
        until(self.replica_used_everywhere, 30)
        # A deploy of the worker while the first syncs run: each must finish,
        # on this worker before it exits or on the next one (checked at the end).
        self.inject("deploy the worker: SIGTERM, start it 1 s later", 0.03, ["stop-worker"], ["start-worker"], 1,
                    self.worker_takes_jobs)
        killed = self.nodes[1]
        self.inject("kill node 2 (SIGKILL), start it 3 s later", 0.10, ["kill-node", "2"], ["start-node", "2"], 3,
                    self.answers_again(killed), killed)
        self.inject("stop the replica, start it 5 s later", 0.28, ["stop-replica"], ["start-replica"], 5,
                    lambda _: self.replica_used_everywhere())
        self.inject("pause the replica's replay for 10 s", 0.45, ["pause-replay"], ["resume-replay"], 10,
                    lambda _: self.replica_used_everywhere())
        self.inject("restart Redis", 0.68, ["restart-redis"], None, 0,
                    lambda _: all(get(self.node_url(port) + "/readyz")[0] == 200 for port in self.nodes))
        # A deploy: node 3 is stopped the way systemd stops it and started
        # again. Nothing may fail, not even a POST.
        self.inject("deploy node 3: out of nginx, SIGTERM, restart", 0.82, ["stop-node", "3"], ["start-node", "3"], 2,
                    self.answers_again(self.nodes[2]))

    def end_load(self):
        self.at(self.args.duration)
        self.stop.set()
        for pl in self.players:
            pl.join(30)
        self.ended = time.monotonic()

    def unfinished_syncs(self):
        """Syncs acknowledged during the run finish on the worker: the
        players whose library is not whole once the queue is empty."""
        synced = [pl for pl in self.players if pl.synced]
        names = ",".join(f"'{pl.name}'" for pl in synced) or "''"
        until(lambda: not psql(self.args.primary,
                               f"SELECT 1 FROM jobs j JOIN users u ON u.id = j.user_id "
                               f"WHERE u.username IN ({names}) AND j.kind = 'steam_sync' "
                               f"AND j.status IN ('queued', 'running') AND j.run_after <= now() LIMIT 1"), 180)
        owned = dict((u, int(c)) for u, c in psql(
            self.args.primary,
            f"SELECT u.username, count(l.*) FROM users u LEFT JOIN library_entries l ON l.user_id = u.id "
            f"WHERE u.username IN ({names}) GROUP BY u.username"))
        return synced, [pl.name for pl in synced if owned.get(pl.name, 0) != 25]

    def lost_writes(self):
        """Every acknowledged write must be in the primary."""
        rows = psql(self.args.primary, "SELECT c.id, u.username, c.name FROM custom_achievements c "
                                       "JOIN users u ON u.id = c.owner_id WHERE u.username LIKE 'player%'")
        stored = defaultdict(dict)
        for gid, user, name in rows:
            stored[user][int(gid)] = name
        lost = []
        for pl in self.players:
            mine = stored[pl.name]
            for name, gid in pl.created_acked:
                # A goal found in the list is checked below under its latest name.
                if gid is None and name not in mine.values():
                    lost.append(f"{pl.name}: created {name!r}")
            for gid, name in pl.goals.items():
                if mine.get(gid) != name and mine.get(gid) not in pl.maybe[gid]:
                    lost.append(f"{pl.name}: goal {gid} is {mine.get(gid)!r}, acknowledged {name!r}")
        return lost

    def window(self, e_time):
        for name, s, h, _ in self.faults:
            if s <= e_time <= (h or self.ended) + 2:
                return name
        return "outside the faults"

    def judge(self):
        """Prints what happened and returns the targets missed."""
        args, players, t0 = self.args, self.players, self.t0
        synced, lost_syncs = self.unfinished_syncs()
        lost = self.lost_writes()
        acked = sum(pl.acked_writes for pl in players)
        log = sorted(e for pl in players for e in pl.log)
        by_status = Counter(e[4] for e in log)
        by_kind = Counter(e[6] for e in log)
        kill = next(f for f in self.faults if f[3] is not None)

        def in_flight_on_killed(e):
            # Sent before the kill and answered after it, by the killed node.
            return kill[1] - 0.5 <= e[1] and e[0] <= kill[1] + 0.5 and f":{kill[3]}" in e[5]

        fivexx = [e for e in log if e[4] >= 500 or e[4] == 0]
        excused = [e for e in fivexx if in_flight_on_killed(e)]
        other = [e for e in fivexx if not in_flight_on_killed(e)]
        signed_out = Counter()
        for pl in players:
            for t in pl.signed_out_at:
                signed_out[self.window(t)] += 1
        users_signed_out = sum(1 for pl in players if pl.signed_out_at)

        span = self.ended - t0
        print()
        print(f"load: {args.players} users through nginx for {span:.0f} s, each on its own address")
        print(f"requests sent: {len(log)} ({len(log) / span:.0f}/s): "
              + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
        print(f"sign-ins: {sum(pl.sign_ins for pl in players)}; syncs acknowledged: {len(synced)}, "
              f"finished with the whole library: {len(synced) - len(lost_syncs)}")
        sign_in_ms = sorted((e[1] - e[0]) * 1000 for e in log if e[6] == "sign-in" and e[4] != 429)
        if sign_in_ms:
            print(f"sign-in time: p50 {sign_in_ms[len(sign_in_ms) // 2]:.0f} ms, "
                  f"p99 {sign_in_ms[min(len(sign_in_ms) - 1, len(sign_in_ms) * 99 // 100)]:.0f} ms, "
                  f"slowest {sign_in_ms[-1]:.0f} ms")
        print("answers by status: " + ", ".join(f"{'no answer' if s == 0 else s}: {n}" for s, n in sorted(by_status.items())))
        print(f"failed (5xx or no answer): {len(fivexx)}; in flight on the killed node: {len(excused)}; other: {len(other)}")
        for e in other[:10]:
            print(f"  other failure at {e[0] - t0:.1f} s: {e[2]} {e[3]} -> {e[4] or 'no answer'} via {e[5] or '-'} "
                  f"({self.window(e[0])})")
        print(f"acknowledged writes: {acked}; lost: {len(lost)}")
        for line in lost[:10]:
            print(f"  lost: {line}")
        print(f"users signed out: {users_signed_out}" + "".join(f"; {k}: {v}" for k, v in signed_out.items()))
        print(f"{'fault':46} {'heal':>8} {'5xx during':>11}")
        # Heal: the killed node answers through nginx again; every node reads
        # from the replica again; every node's /readyz says Redis is back.
        for name, s, h, _ in self.faults:
            during = sum(1 for e in fivexx if s <= e[1] <= (h or self.ended) + 2)
            heal = f"{h - s:.1f} s" if h else "never"
            print(f"{name:46} {heal:>8} {during:>11}")
        served = Counter(e[5].split(",")[-1].strip() for e in log if e[5])
        print("answered by node: " + ", ".join(f"{k} {v}" for k, v in sorted(served.items())))
        self.print_replica_reads()
        print(f"PostgreSQL connections at most: primary {self.peak['primary']}, replica {self.peak['replica']} "
              f"({len(self.nodes)} nodes and a worker)")
        for err in self.shared["errors"][:5]:
            print(f"driver error: {err}")

        missed = []
        if lost:
            missed.append(f"{len(lost)} acknowledged write(s) lost")
        if lost_syncs:
            missed.append(f"{len(lost_syncs)} acknowledged sync(s) did not finish: {', '.join(lost_syncs[:5])}")
        if other:
            missed.append(f"{len(other)} failure(s) not in flight on the killed node")
        if signed_out.get(kill[0]):
            missed.append("users were signed out by the node kill")
        if any(h is None for _, _, h, _ in self.faults):
            missed.append("a fault never healed")
        if self.shared["errors"]:
            missed.append("the driver itself failed")
        if len(log) < 200:
            missed.append("too little load to judge")
        if missed and other and args.logs:
            print_node_errors(args.logs)
        return missed

    def print_replica_reads(self):
        replica = Counter()
        for port in self.nodes:
            for line in get(self.node_url(port) + "/metrics")[1].splitlines():
                m = re.match(r'questline_replica_reads\{reason="([^"]*)",served_by="(\w+)"\} (\d+)', line)
                if m:
                    replica["by the replica" if m[2] == "replica" else f"by the primary ({m[1]})"] += int(m[3])
        print("page reads since each node started: " + ", ".join(f"{k} {v}" for k, v in sorted(replica.items())))


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--players", type=int, default=30)
    p.add_argument("--nodes", required=True)
    p.add_argument("--primary", required=True)
    p.add_argument("--replica-port", type=int, required=True)
    p.add_argument("--duration", type=float, default=75)
    p.add_argument("--logs", help="the nodes' JSON logs, to say why a request failed")
    return p.parse_args()


def main():
    run = Run(parse_args())
    run.start_load()
    run.inject_faults()
    run.end_load()
    missed = run.judge()
    if missed:
        print("targets missed: " + "; ".join(missed))
        sys.exit(1)
    print("targets met: no acknowledged write lost, no 5xx but in flight on the killed node, "
          "nobody signed out by the node kill")


if __name__ == "__main__":
    main()
