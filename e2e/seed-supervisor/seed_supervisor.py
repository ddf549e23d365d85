#!/usr/bin/python3
"""Seed supervisor: the ORIGINAL OpenSpace WebRTC rendering-server command protocol, and nothing more.

A test fixture. It speaks only the seed's protocol (none of our agent's extensions: no
`session`, `slots`, `detail`, `token`, `viewers`, no WATCH) so the operator can be tested
against a server that knows nothing of them. Instances are real processes.

Wire protocol (JSON over WebSocket; one request per connection, answered, then closed):

  START          -> {"command":"START","error":"none","id":N}
                    {"command":"START","error":"no available slots","id":-1}
  STOP id        -> {"command":"STOP","error":"none"|"not running"|"invalid id","id":N}
  STATUS id      -> {"command":"STATUS","error":"none","id":N,"status":S}
                    {"command":"STATUS","error":"invalid id","id":N,"status":"INVALID"}
  SERVER_STATUS  -> {"command":"SERVER_STATUS","error":"none","id":0,"running":R,"total":T}
  RESOLUTION id width height
                 -> {"command":"RESOLUTION","error":E,"id":N,"width":W,"height":H}
  unknown X      -> {"error":"invalid message received: X"}
  not JSON       -> {"error":"json decode error"}

Slot life cycle: IDLE -START-> INITIALIZING -(--ready-delay)-> RUNNING -STOP-> DEINITIALIZING
-(--stop-delay)-> IDLE. An instance that exits by itself sends its slot back to IDLE.

Deliberate differences from the original, which are fixes and not extensions: a bad id is
answered with "invalid id" instead of crashing the server, STATUS answers the asked id
instead of always 0, and a crashed instance is noticed at once instead of never.

Requires Python 3.11 and websockets 10.4 (Debian: python3-websockets); stdlib otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import signal
import socket
import sys
from dataclasses import dataclass, field

import websockets
import websockets.exceptions
import websockets.server

log = logging.getLogger("seed-supervisor")

IDLE = "IDLE"
INITIALIZING = "INITIALIZING"
RUNNING = "RUNNING"
DEINITIALIZING = "DEINITIALIZING"
INVALID = "INVALID"

# The original's error strings; no others are ever sent.
ERR_NONE = "none"
ERR_NO_SLOTS = "no available slots"
ERR_NOT_RUNNING = "not running"
ERR_INVALID_ID = "invalid id"
ERR_JSON = "json decode error"
ERR_UNKNOWN_PREFIX = "invalid message received: "

# How long shutdown waits between SIGTERM and SIGKILL.
SHUTDOWN_GRACE_S = 2.0


@dataclass
class Slot:
    id: int
    state: str = IDLE
    proc: asyncio.subprocess.Process | None = None
    # Bumped on every START and STOP. A background task (readiness timer, exit watcher) only
    # changes the slot while the generation it was started under is still current, so a late
    # timer never turns a stopped or restarted slot RUNNING or IDLE.
    generation: int = 0
    tasks: set[asyncio.Task] = field(default_factory=set)
    # RESOLUTION is recorded, never acted on (the original never implemented it).
    width: int | None = None
    height: int | None = None


class Supervisor:
    def __init__(self, capacity: int, instance_command: str, ready_delay: float, stop_delay: float):
        self.slots = [Slot(i) for i in range(capacity)]
        self.template = shlex.split(instance_command)
        if not self.template:
            raise ValueError("--instance-command is empty")
        self.ready_delay = ready_delay
        self.stop_delay = stop_delay

    # ----------------------------------------------------------------- helpers

    def _spawn_task(self, slot: Slot, coro) -> None:
        task = asyncio.create_task(coro)
        slot.tasks.add(task)
        task.add_done_callback(slot.tasks.discard)

    def _slot(self, raw_id) -> Slot | None:
        """The slot for a request's id, or None when it is not an in-range integer."""
        if isinstance(raw_id, bool) or not isinstance(raw_id, int):
            return None
        if 0 <= raw_id < len(self.slots):
            return self.slots[raw_id]
        return None

    @staticmethod
    def _echo_id(raw_id) -> int:
        """The id to put in an answer: the asked one if it is a (64-bit) integer, else -1."""
        if isinstance(raw_id, int) and not isinstance(raw_id, bool) and -(2**63) <= raw_id < 2**63:
            return raw_id
        return -1

    def _set_state(self, slot: Slot, state: str) -> None:
        if slot.state != state:
            log.info("slot %d: %s -> %s", slot.id, slot.state, state)
            slot.state = state

    # ---------------------------------------------------------------- commands

    async def start(self) -> dict:
        slot = next((s for s in self.slots if s.state == IDLE), None)
        if slot is None:
            return {"command": "START", "error": ERR_NO_SLOTS, "id": -1}
        slot.generation += 1
        generation = slot.generation
        slot.width = slot.height = None
        self._set_state(slot, INITIALIZING)
        argv = [arg.replace("{id}", str(slot.id)) for arg in self.template]
        try:
            # Own session => own process group, so STOP can signal the whole instance tree.
            # The instance's stdout goes to our stderr: our stdout carries only `listening=`.
            slot.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sys.stderr.fileno(),
                start_new_session=True,
            )
        except OSError as e:
            # The original had no error for this; behave like an instance that died at once.
            log.error("slot %d: cannot start %s: %s", slot.id, argv, e)
            slot.proc = None
            if slot.generation == generation:
                self._set_state(slot, IDLE)
        else:
            log.info("slot %d: started pid %d: %s", slot.id, slot.proc.pid, shlex.join(argv))
            if slot.generation != generation:
                # A STOP arrived while the process was being created; it found no process to
                # stop, so finish its job here. Its own task holds the slot DEINITIALIZING.
                proc, slot.proc = slot.proc, None
                signal_group(proc, signal.SIGKILL)
                self._spawn_task(slot, proc.wait())
            else:
                self._spawn_task(slot, self._become_ready(slot, generation))
                self._spawn_task(slot, self._watch_exit(slot, generation, slot.proc))
        return {"command": "START", "error": ERR_NONE, "id": slot.id}

    async def _become_ready(self, slot: Slot, generation: int) -> None:
        # The original slept a fixed 10 s and then declared the instance up.
        await asyncio.sleep(self.ready_delay)
        if slot.generation == generation and slot.state == INITIALIZING:
            self._set_state(slot, RUNNING)

    async def _watch_exit(self, slot: Slot, generation: int, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()  # also reaps it
        if slot.generation == generation and slot.state in (INITIALIZING, RUNNING):
            log.warning("slot %d: instance pid %d exited by itself (status %s)", slot.id, proc.pid, code)
            slot.proc = None
            self._set_state(slot, IDLE)

    def stop(self, raw_id) -> dict:
        answer = {"command": "STOP", "error": ERR_NONE, "id": self._echo_id(raw_id)}
        slot = self._slot(raw_id)
        if slot is None:
            answer["error"] = ERR_INVALID_ID
        elif slot.state == IDLE:
            answer["error"] = ERR_NOT_RUNNING
        elif slot.state == DEINITIALIZING:
            pass  # already stopping; the stop in progress will finish the job
        else:
            slot.generation += 1  # disarms the readiness timer and the exit watcher
            self._set_state(slot, DEINITIALIZING)
            self._spawn_task(slot, self._deinitialize(slot, slot.generation, slot.proc))
        return answer

    async def _deinitialize(self, slot: Slot, generation: int, proc) -> None:
        # The original held DEINITIALIZING for a fixed 5 s; so do we, whatever the process does.
        if proc is not None:
            signal_group(proc, signal.SIGTERM)
        await asyncio.sleep(self.stop_delay)
        if proc is not None:
            if proc.returncode is None:
                log.warning("slot %d: pid %d ignored SIGTERM; SIGKILL", slot.id, proc.pid)
            # Also reaches what is left of the group when the leader itself is gone.
            signal_group(proc, signal.SIGKILL)
            await proc.wait()
        if slot.generation == generation:
            slot.proc = None
            self._set_state(slot, IDLE)

    def status(self, raw_id) -> dict:
        slot = self._slot(raw_id)
        if slot is None:
            return {"command": "STATUS", "error": ERR_INVALID_ID, "id": self._echo_id(raw_id), "status": INVALID}
        return {"command": "STATUS", "error": ERR_NONE, "id": slot.id, "status": slot.state}

    def server_status(self) -> dict:
        running = sum(1 for s in self.slots if s.state != IDLE)
        return {"command": "SERVER_STATUS", "error": ERR_NONE, "id": 0, "running": running, "total": len(self.slots)}

    def resolution(self, raw_id, width, height) -> dict:
        answer = {"command": "RESOLUTION", "error": ERR_NONE, "id": self._echo_id(raw_id), "width": width, "height": height}
        slot = self._slot(raw_id)
        if slot is None:
            answer["error"] = ERR_INVALID_ID
        elif slot.state == IDLE:
            answer["error"] = ERR_NOT_RUNNING
        else:
            slot.width, slot.height = width, height
            log.info("slot %d: resolution %sx%s recorded (not applied, as in the original)", slot.id, width, height)
        return answer

    async def handle(self, text: str | bytes) -> dict:
        """One request text to its answer."""
        try:
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            msg = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {"error": ERR_JSON}
        if not isinstance(msg, dict) or "command" not in msg:
            # The original only ever understood objects with a command; name the whole message.
            return {"error": ERR_UNKNOWN_PREFIX + text}
        command = msg["command"]
        if command == "START":
            return await self.start()  # extra fields (session, width, ...) are ignored
        if command == "STOP":
            return self.stop(msg.get("id"))
        if command == "STATUS":
            return self.status(msg.get("id"))
        if command == "SERVER_STATUS":
            return self.server_status()
        if command == "RESOLUTION":
            return self.resolution(msg.get("id"), msg.get("width"), msg.get("height"))
        name = command if isinstance(command, str) else json.dumps(command)
        return {"error": ERR_UNKNOWN_PREFIX + name}

    # ---------------------------------------------------------------- shutdown

    async def shutdown(self) -> None:
        """Stops every instance: SIGTERM to each group, SIGKILL after the grace, all reaped."""
        procs = []
        for slot in self.slots:
            for task in list(slot.tasks):
                task.cancel()
            if slot.tasks:
                await asyncio.gather(*slot.tasks, return_exceptions=True)
            if slot.proc is not None:
                procs.append((slot, slot.proc))
        for slot, proc in procs:
            log.info("shutdown: SIGTERM slot %d (pid %d)", slot.id, proc.pid)
            signal_group(proc, signal.SIGTERM)
        if procs:
            waits = [asyncio.create_task(proc.wait()) for _, proc in procs]
            await asyncio.wait(waits, timeout=SHUTDOWN_GRACE_S)
            for slot, proc in procs:
                if proc.returncode is None:
                    log.warning("shutdown: slot %d (pid %d) still alive; SIGKILL", slot.id, proc.pid)
                signal_group(proc, signal.SIGKILL)
            await asyncio.gather(*waits)
        for slot in self.slots:
            slot.proc = None
            self._set_state(slot, IDLE)


def signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Signals the instance's process group (its pgid is its pid: it was started in its own session)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass  # the whole group is already gone


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "127.0.0.1", int(port)


def non_negative(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}")
    return number


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return number


def short(text, limit: int = 300) -> str:
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


async def serve(args: argparse.Namespace) -> None:
    supervisor = Supervisor(args.capacity, args.instance_command, args.ready_delay, args.stop_delay)

    async def on_connection(ws: websockets.server.WebSocketServerProtocol) -> None:
        peer = "%s:%s" % ws.remote_address[:2] if ws.remote_address else "?"
        try:
            request = await ws.recv()  # exactly one message per connection, as the original
        except websockets.exceptions.ConnectionClosed:
            log.info("%s: closed before sending a request", peer)
            return
        log.info("%s: request %s", peer, short(request))
        answer = json.dumps(await supervisor.handle(request))
        log.info("%s: answer %s", peer, answer)
        try:
            await ws.send(answer)
        except websockets.exceptions.ConnectionClosed:
            log.info("%s: closed before the answer was sent", peer)
        # Returning closes the connection (code 1000).

    # Bind one socket ourselves: with port 0 and a name such as "localhost" the library would
    # bind one socket per address, each on a different port, and `listening=` could name one.
    host, port = args.listen
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(addr)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with websockets.serve(on_connection, sock=sock, logger=logging.getLogger("websockets")):
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        print(f"listening={shown_host}:{bound_port}", flush=True)
        log.info(
            "capacity %d, instance %r, ready-delay %ss, stop-delay %ss",
            args.capacity, args.instance_command, args.ready_delay, args.stop_delay,
        )
        await stop.wait()
        log.info("signal received; stopping every instance")
        # Leaving the block closes the listener and open connections first.
    await supervisor.shutdown()
    log.info("bye")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=parse_listen, default="127.0.0.1:4699", help="HOST:PORT (port 0: any free port)")
    parser.add_argument("--capacity", type=positive_int, default=3, help="number of slots (default 3)")
    parser.add_argument(
        "--instance-command", default="sleep 3600",
        help="command run per instance, split like a shell would; {id} becomes the slot id (default: sleep 3600)",
    )
    parser.add_argument("--ready-delay", type=non_negative, default=10.0, help="seconds from START to RUNNING (original: 10)")
    parser.add_argument("--stop-delay", type=non_negative, default=5.0, help="seconds in DEINITIALIZING (original: 5)")
    args = parser.parse_args(argv)
    try:
        shlex.split(args.instance_command)
    except ValueError as e:
        parser.error(f"--instance-command: {e}")
    if not shlex.split(args.instance_command):
        parser.error("--instance-command is empty")

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # The library's per-connection handshake chatter would drown the request log.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
