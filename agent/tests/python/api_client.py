"""OpenSpace's own Python client (`openspace-api` on PyPI) against an instance's TCP API.

Run by agent/tests/instance_api.rs and e2e/browser/tests/api_clients.test.mjs with the python
of scripts/python-api-venv.sh. Every call below is the package's own; each check raises on a
wrong answer, so a non-zero exit with the reason on stderr is a failure. Prints one JSON object
of what it saw.

    api_client.py check HOST PORT PASSWORD     the calls a notebook makes, and a wrong password
    api_client.py set HOST PORT PASSWORD URI VALUE    setProperty, then reads it back
    api_client.py spin HOST PORT PASSWORD SECONDS     sets a camera velocity, then exits
                                                      without releasing it (mid-drag)
"""

import asyncio
import json
import sys

from openspace import Api

FOV = "RenderEngine.HorizFieldOfView"
WAIT = 5.0


async def connected(host, port):
    api = Api(host, port)
    ready = asyncio.Event()

    async def on_connect():
        ready.set()

    api.onConnect(on_connect)
    await api.connect()
    await asyncio.wait_for(ready.wait(), WAIT)
    return api


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


async def check(host, port, password):
    seen = {}
    api = await connected(host, port)
    auth = await asyncio.wait_for(api.authenticate(password), WAIT)
    expect(auth == {"status": "authorized"}, f"authorize: {auth}")
    openspace = await asyncio.wait_for(api.library(), WAIT)
    seen["utc"] = await asyncio.wait_for(openspace.time.UTC(), WAIT)
    expect(isinstance(seen["utc"], str) and seen["utc"][4] == "-", f"UTC: {seen['utc']}")
    seen["deltaTime"] = await asyncio.wait_for(openspace.time.deltaTime(), WAIT)
    seen["guiOrder"] = await asyncio.wait_for(openspace.guiOrder(), WAIT)

    before = await asyncio.wait_for(api.getProperty(FOV), WAIT)
    seen["fov_before"] = before["Value"]
    updates = api.subscribeToProperty(FOV)
    first = await asyncio.wait_for(updates.next(), WAIT)
    expect(first["Value"] == before["Value"], f"subscription starts with the value: {first}")
    api.setProperty(FOV, 30.0)
    changed = await asyncio.wait_for(updates.next(), WAIT)
    seen["fov_pushed"] = changed["Value"]
    expect(changed["Value"] == 30.0, f"the subscription pushes the new value: {changed}")
    after = await asyncio.wait_for(api.getProperty(FOV), WAIT)
    expect(after["Value"] == 30.0, f"getProperty after setProperty: {after}")
    updates.cancel()

    script = await asyncio.wait_for(
        api.executeLuaScript("return openspace.getPropertyValue('" + FOV + "')"), WAIT
    )
    expect(script == {"1": 30.0}, f"executeLuaScript: {script}")
    await asyncio.wait_for(
        api.executeLuaScript(
            "openspace.setPropertyValueSingle('" + FOV + "', 60)", getReturnValue=False
        ),
        WAIT,
    )
    restored = await asyncio.wait_for(api.getProperty(FOV), WAIT)
    expect(restored["Value"] == 60.0, f"a script's set: {restored}")

    time = api.startTopic("time", {"event": "start_subscription"}, {"event": "stop_subscription"})
    stamps = []
    while len(stamps) < 4:
        payload = await asyncio.wait_for(time.next(), WAIT)
        if "time" in payload:
            stamps.append(payload["time"])
    time.cancel()
    expect(stamps == sorted(stamps) and stamps[0] < stamps[-1], f"time runs: {stamps}")
    seen["time"] = stamps

    # Opened before the first one closes: the package's disconnect() closes the socket under
    # its own pending read, and a new socket reusing that fd in the same loop trips over it.
    intruder = await connected(host, port)
    refused = await asyncio.wait_for(intruder.authenticate(password + "-wrong"), WAIT)
    expect(refused == {"status": "incorrectKey"}, f"a wrong password: {refused}")
    seen["refused"] = refused
    try:
        leaked = await asyncio.wait_for(intruder.getProperty(FOV), 1.0)
        raise AssertionError(f"answered without authorization: {leaked}")
    except asyncio.TimeoutError:
        seen["unauthorized_get"] = "no answer"
    intruder.disconnect()
    api.disconnect()
    return seen


async def set_value(host, port, password, uri, value):
    api = await connected(host, port)
    await asyncio.wait_for(api.authenticate(password), WAIT)
    api.setProperty(uri, value)
    now = await asyncio.wait_for(api.getProperty(uri), WAIT)
    api.disconnect()
    return {"value": now["Value"]}


async def spin(host, port, password, seconds):
    api = await connected(host, port)
    await asyncio.wait_for(api.authenticate(password), WAIT)
    camera = api.startTopic("flightcontroller", {"type": "connect"})
    connect = await asyncio.wait_for(camera.next(), WAIT)
    expect(connect["type"] == "connect", f"flightcontroller connect: {connect}")
    camera.talk({"type": "inputState", "inputState": {"values": {"localRollX": 1.0}}})
    await asyncio.sleep(seconds)
    return {"focusNodes": sorted(connect["connect"]["focusNodes"])}


async def main(argv):
    mode, host, port, password = argv[1], argv[2], int(argv[3]), argv[4]
    if mode == "check":
        seen = await check(host, port, password)
    elif mode == "spin":
        seen = await spin(host, port, password, float(argv[5]))
    else:
        seen = await set_value(host, port, password, argv[5], float(argv[6]))
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
