"""What every test server does the same way: tell the test it listens, and
leave when the test that started it is gone (so a crashed test never leaves
servers holding ports)."""
import os
import threading
import time


def write_ready(path, port):
    """PORT into PATH, atomically: the test never reads half a number."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def watch_parent():
    """Exit as soon as the process that started this one has gone."""
    parent = os.getppid()
    if parent == 1:
        return

    def loop():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=loop, daemon=True).start()
