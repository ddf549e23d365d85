#!/bin/sh
# An instance program that takes DELAY seconds to become ready, as OpenSpace does while it loads a
# profile: it sleeps, then listens on its API port (127.0.0.1:PORT), which is what the agent's
# `--ready tcp` waits for, and runs until SIGTERM. Used by the warm-pool tests and benchmark:
#   openspace-agent --ready tcp --instance-command 'e2e/pools/slow-instance.sh 15 {api_port}'
delay=${1:?usage: slow-instance.sh DELAY_SECONDS API_PORT}
port=${2:?usage: slow-instance.sh DELAY_SECONDS API_PORT}
# The agent that started us: when it dies without stopping us (SIGKILL in a test), we go too, so
# no instance outlives its agent on a test machine (in a pod, the container's end does this).
agent=$PPID
sleep "$delay"
exec python3 -c '
import os, signal, socket, sys
if os.getppid() != int(sys.argv[2]):
    sys.exit(0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
s.settimeout(0.2)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while os.getppid() == int(sys.argv[2]):
    try:
        s.accept()[0].close()
    except socket.timeout:
        pass
' "$port" "$agent"
