#!/usr/bin/env python3
"""Write and receive sizes of a receiver, per MiB of WAL, from a recording of the
syscalls:sys_enter_write, syscalls:sys_enter_pwrite64 and syscalls:sys_exit_recvfrom
tracepoints (`perf script -F event,trace` on stdin).

WAL writes are told apart from the rest: 8-byte write() calls are eventfd wake-ups (tokio's
waker), and runs of at least 2048 write() calls of 8192 bytes to one descriptor are
pg_receivewal's zero-fill of each new segment (PostgreSQL 15 pads a new 16 MiB segment with
8 KiB writes before writing WAL into it).

    perf script -i sizes.data -F event,trace | bench/syscall-sizes.py MIB_OF_WAL
"""
import re
import sys

mib = float(sys.argv[1])
writes = []  # (kind, fd, count)
recv = []
for line in sys.stdin:
    m = re.search(r'sys_enter_(write|pwrite64): fd: (0x[0-9a-f]+), buf: 0x[0-9a-f]+, count: (0x[0-9a-f]+)', line)
    if m:
        writes.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16)))
        continue
    m = re.search(r'sys_exit_recvfrom: (0x[0-9a-f]+)', line)
    if m:
        r = int(m.group(1), 16)
        if r < 1 << 63:
            recv.append(r)

wal, eventfd, zero = [], 0, 0
i = 0
while i < len(writes):
    kind, fd, n = writes[i]
    if kind == 'write' and n == 8192:
        j = i
        while j < len(writes) and writes[j] == ('write', fd, 8192):
            j += 1
        if j - i >= 2048:
            zero += j - i
            i = j
            continue
    if kind == 'write' and n == 8:
        eventfd += 1
    else:
        wal.append(n)
    i += 1


def dist(xs):
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    return 'mean %.0f, p10 %d, median %d, p90 %d, max %d bytes' % (
        sum(xs) / len(xs), pick(0.1), pick(0.5), pick(0.9), xs[-1])


if wal:
    print('WAL writes: %.1f per MiB (%s)' % (len(wal) / mib, dist(wal)))
if zero:
    print('zero-fill writes of 8 KiB: %.1f per MiB' % (zero / mib))
if eventfd:
    print('8-byte eventfd writes (wake-ups): %.1f per MiB' % (eventfd / mib))
if recv:
    print('recvfrom returning data: %.1f per MiB (%s)' % (len(recv) / mib, dist(recv)))
