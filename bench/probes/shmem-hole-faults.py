#!/usr/bin/env python3
# Issue 19, kernel-level probe (docs/snapshots-memory.md): what a private (copy-on-write)
# mapping of a sparse RAM file costs on a fault in one of its holes, by file system and
# mapping mode, and who is charged for it. This is what QEMU does with a shared-memory
# snapshot's RAM file at restore (memory-backend-file, share=off: mmap MAP_PRIVATE).
# Node.js cannot mmap, hence Python (standard library only). Needs root (it makes a
# memory cgroup below its own, v1 or v2) and writes only /dev/shm and $TMPDIR files
# that it removes.
#
#   sudo python3 bench/probes/shmem-hole-faults.py
import mmap
import os
import sys
import tempfile

MiB = 1 << 20
SIZE = 128 * MiB
DATA = 4 * MiB  # the "snapshot": data in the first 4 MiB, the rest holes


def own_memcg():
    for line in open('/proc/self/cgroup'):
        n, ctl, p = line.rstrip('\n').split(':', 2)
        if 'memory' in ctl.split(','):
            return '/sys/fs/cgroup/memory' + p, 'v1'
    for line in open('/proc/self/cgroup'):
        if line.startswith('0::'):
            return '/sys/fs/cgroup' + line[3:].strip(), 'v2'
    raise SystemExit('no memory cgroup')


BASE, VER = own_memcg()
CG = os.path.join(BASE, f'shmem-probe-{os.getpid()}')
LIMIT_FILE = 'memory.limit_in_bytes' if VER == 'v1' else 'memory.max'
USAGE_FILE = 'memory.usage_in_bytes' if VER == 'v1' else 'memory.current'


def stat_mib(keys):
    d = {}
    for line in open(os.path.join(CG, 'memory.stat')):
        k, v = line.split()
        d[k] = int(v)
    return {k: round(d.get(k, 0) / MiB) for k in keys}


STAT_KEYS = ['shmem', 'rss', 'cache', 'inactive_file'] if VER == 'v1' else ['shmem', 'anon', 'file', 'inactive_file']


def blocks_mib(p):
    return round(os.stat(p).st_blocks * 512 / MiB)


def make_file(path, dense):
    with open(path, 'wb') as f:
        f.truncate(SIZE)
        f.write(b'\x01' * DATA)
    if dense:
        fd = os.open(path, os.O_RDWR)
        os.posix_fallocate(fd, 0, SIZE)
        os.close(fd)
    if not path.startswith('/dev/shm'):
        os.sync()


def case(name, path, *, dense=False, fd_flags=os.O_RDWR, prot=mmap.PROT_READ | mmap.PROT_WRITE, read_mib=0, write_mib=0, limit_mib=None):
    make_file(path, dense)
    before = blocks_mib(path)
    with open(os.path.join(CG, LIMIT_FILE), 'w') as f:
        f.write(str(limit_mib * MiB) if limit_mib else ('-1' if VER == 'v1' else 'max'))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        with open(os.path.join(CG, 'cgroup.procs'), 'w') as f:
            f.write(str(os.getpid()))
        fd = os.open(path, fd_flags)
        m = mmap.mmap(fd, SIZE, flags=mmap.MAP_PRIVATE, prot=prot)
        s = 0
        for off in range(DATA + MiB, DATA + MiB + read_mib * MiB, 4096):
            s += m[off]
        start = DATA + MiB + read_mib * MiB
        for off in range(start, start + write_mib * MiB, 4096):
            m[off] = 7
        usage = round(int(open(os.path.join(CG, USAGE_FILE)).read()) / MiB)
        os.write(w, f'ok: cgroup {usage} MiB {stat_mib(STAT_KEYS)}'.encode())
        os._exit(0)
    os.close(w)
    msg = os.read(r, 4096).decode()
    os.close(r)
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        msg = f'killed by signal {os.WTERMSIG(st)} (memory cgroup limit)'
    after = blocks_mib(path)
    os.unlink(path)
    print(f'| {name} | {read_mib} / {write_mib} | {limit_mib or "-"} | {before} -> {after} | {msg} |', flush=True)


def main():
    if os.geteuid() != 0:
        raise SystemExit('run as root (it creates a memory cgroup)')
    os.mkdir(CG)
    shm = f'/dev/shm/shmem-probe-{os.getpid()}'
    disk = os.path.join(tempfile.gettempdir(), f'shmem-probe-{os.getpid()}')
    print(f'kernel {os.uname().release}; cgroup {VER}; file {SIZE // MiB} MiB with {DATA // MiB} MiB of data, the rest holes; a child in its own memory cgroup maps it MAP_PRIVATE and touches holes')
    print()
    print('| case | MiB of holes read / written | limit MiB | file allocated MiB before -> after | child |')
    print('|---|---|---|---|---|')
    try:
        case('tmpfs, read-only mapping (PROT_READ), read faults', shm, prot=mmap.PROT_READ, read_mib=32)
        case('tmpfs, read faults', shm, read_mib=32)
        case('tmpfs, write faults', shm, write_mib=32)
        case('tmpfs, file opened O_RDONLY, write faults', shm, fd_flags=os.O_RDONLY, write_mib=32)
        case('tmpfs dense (fallocate), write faults', shm, dense=True, write_mib=32)
        case(f'disk ({disk.split("/")[1]}), read + write faults', disk, read_mib=16, write_mib=16)
        case('tmpfs, 96 MiB written under an 112 MiB limit', shm, write_mib=96, limit_mib=112)
        case('tmpfs dense, same', shm, dense=True, write_mib=96, limit_mib=112)
        case('disk, same', disk, write_mib=96, limit_mib=112)
    finally:
        os.rmdir(CG)


main()
