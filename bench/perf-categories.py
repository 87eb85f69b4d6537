#!/usr/bin/env python3
"""Sorts the samples of a receiver's CPU profile into the costs docs/benchmarks.md talks about.

Input: `perf script --no-inline -F comm,tid,ip,sym,dso` of a `perf record --call-graph dwarf`
profile of pgwalrus or pg_receivewal. Each sample goes to one category, decided by its call
chain: first the system call it is in (found from the kernel's `__x64_sys_*`/`ksys_*` frames or
from the libc wrapper below `entry_SYSCALL_64`), else the innermost user-space frame that names
a crate or a libc routine. Prints the share of each category, overall and (--by-thread) per
thread; with --cpu-per-gib X also the CPU seconds per GiB each share stands for.

    bench/perf-categories.py script.txt [--by-thread] [--cpu-per-gib 1.23]
"""
import collections
import re
import sys

SYS = re.compile(r'^(?:__x64_sys_|__do_sys_|__se_sys_|ksys_)(\w+)')
# libc wrapper (the frame just below entry_SYSCALL_64) -> system call
WRAPPERS = [(r'epoll_wait', 'epoll_wait'), (r'select', 'pselect6'), (r'recv', 'recvfrom'),
            (r'pwrite', 'pwrite64'), (r'fdatasync', 'fdatasync'), (r'fsync', 'fsync'),
            (r'libc_write|^write$|__write', 'write'), (r'libc_read|^read$|__read', 'read'),
            (r'send', 'sendto'), (r'fallocate', 'fallocate'), (r'rename', 'rename'),
            (r'open', 'openat'), (r'close', 'close'), (r'^syscall$', 'futex')]


def samples(path):
    cur = None
    for line in open(path, errors='replace'):
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line[0].isspace():
            if cur:
                yield cur
            cur = {'comm': line.split()[0], 'frames': []}
        else:
            m = re.match(r'\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$', line)
            if m and cur is not None:
                cur['frames'].append((m.group(2), m.group(3)))
    if cur:
        yield cur


def syscall_of(syms):
    for s in syms:
        m = SYS.match(s)
        if m:
            return m.group(1)
    if 'entry_SYSCALL_64_after_hwframe' in syms:
        i = syms.index('entry_SYSCALL_64_after_hwframe')
        wrapper = syms[i + 1] if i + 1 < len(syms) else ''
        for pat, name in WRAPPERS:
            if re.search(pat, wrapper):
                return name
    return None


def classify(frames):
    syms = [s for s, _ in frames]
    kernel = [s for s, d in frames if 'kernel' in d]
    user = [(s, d) for s, d in frames if 'kernel' not in d]
    if kernel:
        sc = syscall_of(syms)
        if sc is None:
            if any('page_fault' in s for s in kernel):
                return 'kernel: page faults'
            return 'kernel: interrupts and other'
        if 'exit_to_user_mode_loop' in syms and 'schedule' in syms:
            return 'kernel: rescheduled on return from a system call (preempted)'
        if sc == 'futex':
            if any(s.startswith('futex_wait') or s in ('schedule', '__schedule') for s in kernel):
                return 'kernel: futex wait (writer thread sleeps, is woken)'
            return 'kernel: futex wake (network thread wakes the writer)'
        if sc in ('epoll_wait', 'epoll_pwait', 'pselect6', 'select', 'poll', 'ppoll'):
            return 'kernel: %s (sleep until the socket is readable, wake-up)' % sc
        if sc in ('write', 'writev', 'pwrite64'):
            if any('eventfd' in s or 'Waker::wake' in s for s in syms):
                return 'kernel: eventfd write (writer thread wakes the runtime)'
            if any(s.startswith('ext4') or 'generic_perform_write' in s or 'copy_folio' in s
                   for s in kernel) or sc == 'pwrite64':
                return 'kernel: write of WAL (copy into the page cache, ext4)'
            return 'kernel: write, other'
        if sc in ('read', 'recvfrom', 'recvmsg'):
            return 'kernel: recv from the socket (copy out, TCP)'
        if sc in ('fsync', 'fdatasync', 'sync_file_range'):
            return 'kernel: fsync/fdatasync (write-back of the segment)'
        if sc in ('fallocate', 'openat', 'rename', 'renameat2', 'close', 'ftruncate', 'unlink',
                  'newfstatat', 'statx', 'lseek'):
            return 'kernel: segment open/fallocate/rename/close'
        if sc in ('sendto', 'sendmsg'):
            return 'kernel: send (feedback)'
        if sc in ('mmap', 'munmap', 'madvise', 'brk', 'mremap', 'mprotect'):
            return 'kernel: memory map changes'
        return 'kernel: other system calls'
    for s, d in user:
        if 'libc' in d or 'ld-linux' in d or 'vdso' in d:
            if re.search(r'malloc|free|realloc|calloc|_int_|tcache|memalign', s):
                return 'user: allocation (malloc/free)'
            if re.search(r'memmove|memcpy|memset', s):
                continue  # belongs to the caller
            if re.search(r'syscall|epoll|select|__libc_|pwrite|write|recv|read|send|clock_gettime|vdso', s):
                return 'user: libc system-call wrappers, clock'
            continue
        if re.search(r'crc32c|pgwalrus_wal::crc', s):
            return 'user: CRC-32C (verification)'
        if s.startswith('pgwalrus_wal') or 'pgwalrus_receiver::verify' in s:
            return 'user: WAL decoder (verification)'
        if re.search(r'^alloc::|__rust_alloc|__rust_dealloc|__rdl_|RawVec|^bytes::|<bytes::', s):
            return 'user: allocation, Bytes/BytesMut bookkeeping'
        if s.startswith('pgwalrus_proto') or s.startswith('pgwalrus_client'):
            return 'user: protocol parsing, client framing'
        if s.startswith('tokio::sync') or s.startswith('<tokio::sync'):
            return 'user: tokio channels, watch, notify'
        if re.search(r'^<?(tokio|mio)', s):
            return 'user: tokio runtime (scheduler, timers, I/O driver)'
        if s.startswith('pgwalrus_archive'):
            return 'user: archive writer'
        if s.startswith('pgwalrus_receiver') or s.startswith('<pgwalrus_receiver') or 'PollFn' in s:
            return 'user: receive loop (select!, status, policy, writer loop)'
    if user and re.search(r'memmove|memcpy|memset', user[0][0]):
        return 'user: memcpy (libpq copy, other)'
    return 'user: other (pg_receivewal, libpq: no symbols)'


def main():
    args = sys.argv[1:]
    path = args[0]
    by_thread = '--by-thread' in args
    cpu = float(args[args.index('--cpu-per-gib') + 1]) if '--cpu-per-gib' in args else None
    counts = collections.Counter()
    threads = collections.Counter()
    total = 0
    for s in samples(path):
        cat = classify(s['frames'])
        counts[(s['comm'], cat) if by_thread else cat] += 1
        threads[s['comm']] += 1
        total += 1
    print('%d samples; by thread: %s' % (total, ', '.join('%s %d' % kv for kv in threads.most_common())))
    for key, n in counts.most_common():
        label = '%-16s %s' % key if by_thread else key
        extra = '  %.2f CPU s/GiB' % (cpu * n / total) if cpu else ''
        print('%6.1f%%%s  %s' % (100.0 * n / total, extra, label))


if __name__ == '__main__':
    main()
