"""A throwaway HTTP server for playbooks/demo.yml.

Serves the files of DIR on 127.0.0.1 at a free port, writes that port to DIR/port and its
process id to DIR/pid (each atomically, so a reader never sees half a number), and exits by
itself after MAX_SECONDS even if the playbook never stops it.

    python3 demo_http_server.py DIR [MAX_SECONDS]
"""

import functools
import http.server
import os
import sys
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


def write_atomically(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    directory = sys.argv[1]
    max_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    stop_timer = threading.Timer(max_seconds, server.shutdown)
    stop_timer.daemon = True
    stop_timer.start()
    write_atomically(os.path.join(directory, "pid"), str(os.getpid()))
    write_atomically(os.path.join(directory, "port"), str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
