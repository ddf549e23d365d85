#!/usr/bin/env bash
# Smoke test of seed_supervisor.py: starts it on a free port (capacity 2, ready-delay 0.2,
# stop-delay 0.3), walks the seed protocol with a tiny websockets client (one message per
# connection), then sends SIGTERM and checks that it exits 0 and no `sleep` instance survives.
# Exits non-zero on the first failure. Usage: e2e/seed-supervisor/smoke.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
server_pid=""

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    # Instances that a failed run may have left behind (their pids were recorded by the client).
    if [[ -s "$work/pids" ]]; then
        while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$work/pids"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- server stderr ---" >&2
    cat "$work/stderr" >&2 || true
    exit 1
}

# A Python that has websockets (Debian's python3-websockets lives under /usr/bin/python3).
python=""
for candidate in "${PYTHON:-}" /usr/bin/python3 python3; do
    if [[ -n "$candidate" ]] && "$candidate" -c 'import websockets' 2>/dev/null; then
        python="$candidate"
        break
    fi
done
[[ -n "$python" ]] || fail "no python3 with websockets (apt-get install python3-websockets)"

# `sleep 360{id}` makes each slot's process recognisable: slot 0 runs `sleep 3600`, slot 1 `sleep 3601`.
"$python" "$here/seed_supervisor.py" --listen 127.0.0.1:0 --capacity 2 \
    --ready-delay 0.2 --stop-delay 0.3 --instance-command 'sleep 360{id}' \
    >"$work/stdout" 2>"$work/stderr" &
server_pid=$!

listen=""
for _ in $(seq 100); do
    listen="$(sed -n 's/^listening=//p' "$work/stdout")"
    [[ -n "$listen" ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "server exited before listening"
    sleep 0.05
done
[[ -n "$listen" ]] || fail "no listening= line on stdout"
echo "server pid $server_pid listening on $listen"

"$python" - "ws://$listen" "$server_pid" "$work/pids" <<'PY' || fail "protocol checks"
import asyncio, json, os, sys, time
import websockets

url, server_pid, pids_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]

async def send_raw(text):
    """One message per connection, like the original's clients; the server closes after answering."""
    async with websockets.connect(url) as ws:
        await ws.send(text)
        answer = json.loads(await ws.recv())
        try:
            await asyncio.wait_for(ws.recv(), 2)
            raise AssertionError("server sent a second message")
        except websockets.exceptions.ConnectionClosedOK:
            pass  # closed by the server after its one answer, as expected
        return answer

async def ask(request):
    return await send_raw(json.dumps(request))

def check(name, got, want):
    # Whole-answer equality: also proves that no extension field (session, slots, detail...) leaks.
    if got != want:
        raise AssertionError(f"{name}: got {got}, want {want}")
    print(f"ok  {name}: {json.dumps(got)}")

def children():
    """{pid: argv} of the server's direct children (the instances)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != server_pid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out[int(pid)] = f.read().rstrip(b"\0").decode().split("\0")
        except (OSError, ValueError, IndexError):
            pass
    return out

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

async def status(i, want_status, name):
    check(name, await ask({"command": "STATUS", "id": i}),
          {"command": "STATUS", "error": "none", "id": i, "status": want_status})

async def eventually_status(i, want_status, name, within=2.0):
    deadline = time.monotonic() + within
    while True:
        a = await ask({"command": "STATUS", "id": i})
        if a.get("status") == want_status or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    check(name, a, {"command": "STATUS", "error": "none", "id": i, "status": want_status})

async def main():
    check("SERVER_STATUS idle", await ask({"command": "SERVER_STATUS"}),
          {"command": "SERVER_STATUS", "error": "none", "id": 0, "running": 0, "total": 2})
    check("START -> 0", await ask({"command": "START"}), {"command": "START", "error": "none", "id": 0})
    check("START (extension fields ignored) -> 1",
          await ask({"command": "START", "session": "abc", "width": 640, "height": 480}),
          {"command": "START", "error": "none", "id": 1})
    check("START full", await ask({"command": "START"}),
          {"command": "START", "error": "no available slots", "id": -1})
    await status(0, "INITIALIZING", "STATUS 0 right after START")
    check("SERVER_STATUS busy", await ask({"command": "SERVER_STATUS"}),
          {"command": "SERVER_STATUS", "error": "none", "id": 0, "running": 2, "total": 2})
    await asyncio.sleep(0.5)  # > ready-delay 0.2
    await status(0, "RUNNING", "STATUS 0 after ready-delay")
    await status(1, "RUNNING", "STATUS 1 after ready-delay")

    kids = children()
    by_arg = {tuple(argv): pid for pid, argv in kids.items()}
    with open(pids_file, "w") as f:
        f.writelines(f"{pid}\n" for pid in kids)
    if set(by_arg) != {("sleep", "3600"), ("sleep", "3601")}:
        raise AssertionError(f"instances: got {kids}, want sleep 3600 and sleep 3601")
    pid0, pid1 = by_arg[("sleep", "3600")], by_arg[("sleep", "3601")]
    if os.getpgid(pid0) != pid0 or os.getpgid(pid1) != pid1:
        raise AssertionError("instances are not leaders of their own process groups")
    print(f"ok  instances: slot 0 pid {pid0}, slot 1 pid {pid1}, each in its own process group")

    check("RESOLUTION 0", await ask({"command": "RESOLUTION", "id": 0, "width": 1280, "height": 720}),
          {"command": "RESOLUTION", "error": "none", "id": 0, "width": 1280, "height": 720})
    check("RESOLUTION 5", await ask({"command": "RESOLUTION", "id": 5, "width": 1280, "height": 720}),
          {"command": "RESOLUTION", "error": "invalid id", "id": 5, "width": 1280, "height": 720})

    check("STOP 0", await ask({"command": "STOP", "id": 0}), {"command": "STOP", "error": "none", "id": 0})
    await status(0, "DEINITIALIZING", "STATUS 0 right after STOP")
    await asyncio.sleep(0.6)  # > stop-delay 0.3
    await status(0, "IDLE", "STATUS 0 after stop-delay")
    if alive(pid0):
        raise AssertionError(f"slot 0's process {pid0} survived STOP")
    print(f"ok  slot 0's process {pid0} is gone")
    check("STOP 0 again", await ask({"command": "STOP", "id": 0}), {"command": "STOP", "error": "not running", "id": 0})
    check("RESOLUTION idle", await ask({"command": "RESOLUTION", "id": 0, "width": 800, "height": 600}),
          {"command": "RESOLUTION", "error": "not running", "id": 0, "width": 800, "height": 600})
    check("STOP 7", await ask({"command": "STOP", "id": 7}), {"command": "STOP", "error": "invalid id", "id": 7})
    check("STOP -1", await ask({"command": "STOP", "id": -1}), {"command": "STOP", "error": "invalid id", "id": -1})
    check("STATUS 5", await ask({"command": "STATUS", "id": 5}),
          {"command": "STATUS", "error": "invalid id", "id": 5, "status": "INVALID"})
    check("STATUS \"0\"", await ask({"command": "STATUS", "id": "0"}),
          {"command": "STATUS", "error": "invalid id", "id": -1, "status": "INVALID"})

    # A crash (the instance exits by itself) sends the slot back to IDLE.
    os.kill(pid1, 9)
    await eventually_status(1, "IDLE", "STATUS 1 after its process was killed")
    check("SERVER_STATUS after crash", await ask({"command": "SERVER_STATUS"}),
          {"command": "SERVER_STATUS", "error": "none", "id": 0, "running": 0, "total": 2})

    check("WATCH is unknown", await ask({"command": "WATCH"}), {"error": "invalid message received: WATCH"})
    check("unknown command", await ask({"command": "REBOOT", "id": 0}), {"error": "invalid message received: REBOOT"})
    check("bad JSON", await send_raw("{not json"), {"error": "json decode error"})

    # Leave two live instances for the SIGTERM check.
    check("START again -> 0", await ask({"command": "START"}), {"command": "START", "error": "none", "id": 0})
    check("START again -> 1", await ask({"command": "START"}), {"command": "START", "error": "none", "id": 1})
    await asyncio.sleep(0.1)
    kids = children()
    if len(kids) != 2:
        raise AssertionError(f"want 2 instances before SIGTERM, got {kids}")
    with open(pids_file, "w") as f:
        f.writelines(f"{pid}\n" for pid in kids)

asyncio.run(main())
PY

kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[[ "$rc" -eq 0 ]] || fail "server exited $rc after SIGTERM, want 0"
echo "ok  server exited 0 after SIGTERM"

# Each instance led its own process group (pgid = its pid): nothing of any group may remain.
while read -r pid; do
    if [[ -e "/proc/$pid" ]]; then
        fail "instance $pid survived SIGTERM: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
    fi
    if pgrep -g "$pid" >/dev/null; then
        fail "process group $pid survived SIGTERM: $(pgrep -a -g "$pid")"
    fi
done <"$work/pids"
echo "ok  no sleep instance survived"

lines="$(wc -l <"$work/stdout")"
[[ "$lines" -eq 1 ]] || fail "stdout has $lines lines, want exactly the listening= line"
echo "ok  stdout is exactly one line: $(cat "$work/stdout")"
echo "PASS"
