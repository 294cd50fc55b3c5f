"""A counting Graphite destination for bench/relay.sh: accepts any number
of connections on 127.0.0.1:PORT, counts the lines that arrive, and exits
once COUNT have (printing the seconds since the first byte), or after
TIMEOUT seconds of silence (printing how many came)."""
import selectors
import socket
import sys
import time

port, count, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ)
seen, first = 0, None
open(sys.argv[4], "w").close()  # tells the caller we listen
while seen < count:
    events = sel.select(timeout)
    if not events:
        print(f"incomplete {seen}", flush=True)
        sys.exit(1)
    for key, _ in events:
        if key.fileobj is srv:
            conn, _ = srv.accept()
            sel.register(conn, selectors.EVENT_READ)
            continue
        data = key.fileobj.recv(1 << 20)
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            continue
        if first is None:
            first = time.monotonic()
        seen += data.count(b"\n")
print(f"complete {seen}", flush=True)
