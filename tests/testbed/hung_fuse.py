"""A FUSE filesystem whose `statfs` never answers (a hung sshfs or NFS mount, on purpose), and a
runner that starts a command while it is mounted.

The server speaks the kernel's FUSE protocol on /dev/fuse directly (no libfuse): it answers
FUSE_INIT and nothing else, so every later request (statfs, lookup, ...) waits for ever. Run it
inside a private mount namespace so no other process on the machine ever sees the mount:

    unshare -m --propagation private python -m testbed.hung_fuse MOUNTDIR TIMEOUT_S -- CMD...

It mounts MOUNTDIR, runs CMD with stdout and stderr captured, and prints one JSON object:
`returncode`, `stdout`, `stderr`, `elapsed_s` (until CMD exited and its pipes closed), and
`hung` (true when CMD had not finished after TIMEOUT_S). Then it kills the server, which makes
every pending request fail, so nothing stays blocked.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import struct
import subprocess
import sys
import time

FUSE_INIT = 26
IN_HEADER = struct.Struct("=IIQQIIII")  # len, opcode, unique, nodeid, uid, gid, pid, padding
OUT_HEADER = struct.Struct("=IiQ")  # len, error, unique
INIT_IN = struct.Struct("=IIII")  # major, minor, max_readahead, flags
# major, minor, max_readahead, flags, max_background, congestion_threshold, max_write,
# time_gran, max_pages, map_alignment, flags2, unused[7]
INIT_OUT = struct.Struct("=IIIIHHIIHHI7I")


def serve(fd: int) -> None:
    """Answers FUSE_INIT, then reads and ignores every request for ever."""
    while True:
        try:
            request = os.read(fd, 1 << 20)
        except OSError:
            return
        if len(request) < IN_HEADER.size:
            continue
        _length, opcode, unique, *_ = IN_HEADER.unpack_from(request)
        if opcode != FUSE_INIT:
            continue  # never answered: the caller waits
        major, minor, readahead, _flags = INIT_IN.unpack_from(request, IN_HEADER.size)
        body = INIT_OUT.pack(7, min(minor, 31), readahead, 0, 16, 12, 1 << 17, 1, 32, 0, 0, *([0] * 7))
        os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(body), 0, unique) + body)


def mount(mountpoint: str) -> int:
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    options = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
    if libc.mount(b"hung", mountpoint.encode(), b"fuse", 0, options) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount fuse on {mountpoint}: {os.strerror(errno)}")
    return fd


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    mountpoint, timeout_s, command = argv[0], float(argv[1]), argv[3:]
    fd = mount(mountpoint)
    server = os.fork()
    if server == 0:
        try:
            serve(fd)
        finally:
            os._exit(0)
    os.close(fd)
    started = time.monotonic()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    hung = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        hung = True
    elapsed = time.monotonic() - started
    os.kill(server, signal.SIGKILL)
    os.waitpid(server, 0)
    if hung:
        stdout, stderr = proc.communicate(timeout=30)
    subprocess.run(["umount", "-l", mountpoint], check=False)
    print(json.dumps({"returncode": proc.returncode, "stdout": stdout, "stderr": stderr,
                      "elapsed_s": elapsed, "hung": hung}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
