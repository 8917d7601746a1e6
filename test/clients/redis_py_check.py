"""
redis-py (installed by .ci/run) against a freshet primary and backup, with the
client's default settings (redis-py 8 speaks RESP3 through HELLO 3). Exits
non-zero with the failing check's message; prints one line per check.
Usage: redis_py_check.py PRIMARY_PORT BACKUP_PORT PASSWORD
"""
import sys

import redis

primary_port, backup_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
checks = 0


def check(name, got, want):
    global checks
    if got != want:
        print(f"FAIL {name}: got {got!r}, want {want!r}")
        sys.exit(1)
    checks += 1
    print(f"ok {name}")


r = redis.Redis(host="127.0.0.1", port=primary_port, password=password)
check("ping", r.ping(), True)
conn = r.connection_pool.get_connection()
check("speaks RESP3 by default (HELLO 3)", conn.protocol, 3)
r.connection_pool.release(conn)
check("set/get", (r.set("py:k", "v"), r.get("py:k")), (True, b"v"))
check("setnx", (r.setnx("py:k", "w"), r.setnx("py:n", "1")), (False, True))
check("incr/incrby/decr", (r.incr("py:c"), r.incrby("py:c", 10), r.decr("py:c")), (1, 11, 10))
check("incrbyfloat", r.incrbyfloat("py:f", 0.1) + r.incrbyfloat("py:f", 0.2), 0.1 + 0.3)
check("append/strlen", (r.append("py:k", "xyz"), r.strlen("py:k")), (4, 4))
check("getrange/setrange", (r.setrange("py:k", 1, "AB"), r.getrange("py:k", 0, -1)), (4, b"vABz"))
check("mset/mget", (r.mset({"py:a": "1", "py:b": "2"}), r.mget("py:a", "py:b", "py:missing")), (True, [b"1", b"2", None]))
check("getdel", (r.getdel("py:a"), r.exists("py:a")), (b"1", 0))
check("bits", (r.setbit("py:bits", 7, 1), r.getbit("py:bits", 7), r.bitcount("py:bits"), r.bitpos("py:bits", 1)), (0, 1, 1, 7))
check("type", (r.type("py:k"), r.type("py:missing")), (b"string", b"none"))
check("rename/renamenx", (r.rename("py:b", "py:b2"), r.renamenx("py:b2", "py:k")), (True, False))
check("copy", (r.copy("py:k", "py:k2"), r.get("py:k2")), (True, b"vABz"))
check("keys", sorted(r.keys("py:k*")), [b"py:k", b"py:k2"])
check("scan_iter", len([k for k in r.scan_iter(match="py:*", count=100)]) >= 5, True)
check("ttl", (r.ttl("py:k"), r.ttl("py:missing")), (-1, -2))
check("lcs", r.lcs("py:k", "py:k2"), b"vABz")
check("dbsize", r.dbsize() >= 5, True)
info = r.info()
check("info role", info["role"], "master")
check("info fields", all(f in info for f in ("run_id", "used_memory_human", "instantaneous_ops_per_sec", "blocked_clients")), True)
check("config get", r.config_get("maxclients"), {"maxclients": "10000"})
check("client setname/getname", (r.client_setname("py-client"), r.client_getname()), (True, "py-client"))

pipe = r.pipeline(transaction=False)
for i in range(50):
    pipe.set(f"py:p{i}", i)
check("pipeline", all(pipe.execute()), True)

tx = r.pipeline(transaction=True)
tx.incr("py:tx").incr("py:tx").get("py:tx")
check("multi/exec", tx.execute(), [1, 2, b"2"])


def bump(pipe):
    value = int(pipe.get("py:watched") or 0)
    pipe.multi()
    pipe.set("py:watched", value + 1)


check("watch transaction", r.transaction(bump, "py:watched"), [True])
other = redis.Redis(host="127.0.0.1", port=primary_port, password=password)
with r.pipeline() as p:
    p.watch("py:watched")
    other.set("py:watched", "changed")
    p.multi()
    p.set("py:watched", "mine")
    try:
        p.execute()
        aborted = False
    except redis.WatchError:
        aborted = True
check("watch aborts on a concurrent write", (aborted, r.get("py:watched")), (True, b"changed"))

lsn = r.execute_command("LSN")
b = redis.Redis(host="127.0.0.1", port=backup_port, password=password)
check("backup waitlsn", b.execute_command("WAITLSN", lsn, 10000) >= lsn, True)
check("backup read", (b.get("py:k"), b.mget("py:k2", "py:p7")), (b"vABz", [b"vABz", b"7"]))
check("backup role", b.info("replication")["role"], "slave")
try:
    b.set("py:k", "x")
    readonly = False
except redis.exceptions.ReadOnlyError:
    readonly = True
check("backup readonly", readonly, True)

# The freshness contract is a plain command: a read of one's own write on a backup, and a clear error when too stale.
r.set("py:fresh", "mine")
lsn = r.execute_command("LSN")
check("fresh read", b.execute_command("FRESHET.READ", "MINLSN", lsn, "WAIT", 10000, "GET", "py:fresh"), b"mine")
try:
    b.execute_command("FRESHET.READ", "MINLSN", lsn + 10**12, "GET", "py:fresh")
    stale = None
except redis.exceptions.ResponseError as e:
    stale = str(e).split(" ")[0]
check("stale read refused", stale, "STALE")

resp2 = redis.Redis(host="127.0.0.1", port=primary_port, password=password, protocol=2)
check("resp2 client", (resp2.get("py:k"), resp2.get("py:missing")), (b"vABz", None))
print(f"PASSED {checks}")
