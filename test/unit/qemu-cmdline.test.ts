import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildQemuArgs, escapeOptValue, memoryLayout, pmemRootfs, runFiles, VmConfigError } from '../../src/runtimes/qemu/cmdline.js';
import type { VmConfig } from '../../src/runtimes/types.js';
import { testImage, testVmConfig } from '../helpers/vm-config.js';

const image = testImage('console=ttyS0 reboot=t panic=-1 tsc_early_khz=2400000');

function cfg(over: Partial<VmConfig> = {}): VmConfig {
  return testVmConfig(image, over);
}

function after(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

function allAfter(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag && args[i + 1] !== undefined ? [args[i + 1]!] : []));
}

void test('cold boot, anonymous memory, tcg', () => {
  const a = buildQemuArgs(cfg({ extraCmdline: 'faascell.x=1' }));
  assert.equal(after(a, '-M'), 'microvm,pit=on,pic=on,rtc=on');
  assert.equal(after(a, '-accel'), 'tcg');
  assert.equal(after(a, '-cpu'), 'max');
  assert.equal(after(a, '-m'), '256');
  assert.equal(after(a, '-smp'), '1');
  for (const f of ['-nodefaults', '-no-user-config', '-no-reboot']) assert.ok(a.includes(f), f);
  assert.equal(after(a, '-display'), 'none');
  assert.equal(after(a, '-serial'), 'file:/run/vm1/console.log');
  assert.equal(after(a, '-kernel'), '/img/vmlinux');
  assert.equal(after(a, '-initrd'), '/img/initrd.cpio.gz');
  assert.equal(after(a, '-append'), `${image.cmdline} faascell.x=1`);
  assert.equal(after(a, '-qmp'), 'unix:/run/vm1/qmp.sock,server=on,wait=off');
  assert.equal(after(a, '-chardev'), 'socket,id=agent,path=/run/vm1/channel.sock,server=on,wait=off');
  // every VM has one NIC, without a peer unless it has networking (docs/network.md)
  assert.deepEqual(allAfter(a, '-device'), ['virtio-serial-device', 'virtserialport,chardev=agent,name=faascell.agent', 'virtio-blk-device,drive=rootfs', 'virtio-net-device,mac=02:fa:a5:00:00:02']);
  assert.equal(a.includes('-netdev'), false);
  assert.equal(after(a, '-drive'), 'file=/img/rootfs.sqfs,if=none,id=rootfs,format=raw,readonly=on');
  assert.equal(after(a, '-pidfile'), '/run/vm1/qemu.pid');
  assert.equal(a.includes('-incoming'), false);
  assert.equal(a.includes('-object'), false);
  assert.deepEqual(runFiles('/r'), { qmpSocket: '/r/qmp.sock', channelSocket: '/r/channel.sock', consoleLog: '/r/console.log', pidFile: '/r/qemu.pid' });
});

void test('kvm', () => {
  const a = buildQemuArgs(cfg({ accelerator: 'kvm', vcpus: 2, memoryMiB: 512 }));
  assert.equal(after(a, '-accel'), 'kvm');
  assert.equal(after(a, '-cpu'), 'host');
  assert.equal(after(a, '-smp'), '2');
  assert.equal(after(a, '-m'), '512');
});

void test('file-backed memory (snapshot source) and restore', () => {
  const src = buildQemuArgs(cfg({ memory: { kind: 'file', path: '/dev/shm/fn-mem', share: true } }));
  assert.equal(after(src, '-M'), 'microvm,pit=on,pic=on,rtc=on,memory-backend=mem');
  assert.equal(after(src, '-object'), 'memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/fn-mem,share=on');
  const rst = buildQemuArgs(cfg(), { incoming: true, memory: { kind: 'file', path: '/dev/shm/fn-mem', share: false } });
  assert.equal(after(rst, '-object'), 'memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/fn-mem,share=off');
  assert.equal(after(rst, '-incoming'), 'defer');
  // everything but share= and -incoming is identical: the device layout must match the snapshot
  const norm = (x: string[]) => x.filter((v) => v !== '-incoming' && v !== 'defer').map((v) => v.replace('share=off', 'share=on'));
  assert.deepEqual(norm(rst), src);
});

void test('commas in option paths are doubled, serial path kept verbatim', () => {
  assert.equal(escapeOptValue('a,b,,c'), 'a,,b,,,,c');
  const a = buildQemuArgs(cfg({ runDir: '/run/a,b', memory: { kind: 'file', path: '/shm/x,y', share: true } }));
  assert.equal(after(a, '-qmp'), 'unix:/run/a,,b/qmp.sock,server=on,wait=off');
  assert.match(after(a, '-object')!, /mem-path=\/shm\/x,,y,share=on$/);
  assert.equal(after(a, '-serial'), 'file:/run/a,b/console.log');
});

void test('probe mode: serial on stdio', () => {
  assert.equal(after(buildQemuArgs(cfg(), { serial: 'stdio' }), '-serial'), 'stdio');
});

void test('validation', () => {
  const bad: Array<[Partial<VmConfig>, RegExp]> = [
    [{ memoryMiB: 0 }, /memoryMiB/],
    [{ memoryMiB: 128.5 }, /memoryMiB/],
    [{ memoryMiB: Number.NaN }, /memoryMiB/],
    [{ vcpus: 0 }, /vcpus/],
    [{ vcpus: 1.5 }, /vcpus/],
    [{ vcpus: 1000 }, /vcpus/],
    [{ vmId: 'a b' }, /vmId/],
    [{ vmId: '' }, /vmId/],
    [{ runDir: 'relative/dir' }, /runDir must be an absolute path/],
    [{ accelerator: 'hvf' as 'kvm' }, /accelerator/],
    [{ memory: { kind: 'file', path: 'x', share: true } }, /memory.path/],
    [{ cpuAffinity: [-1] }, /cpuAffinity/],
    [{ extraCmdline: 'a\nb' }, /single line/],
    [{ image: { ...image, kernelPath: '' } }, /kernelPath is missing/],
  ];
  for (const [over, re] of bad) {
    assert.throws(() => buildQemuArgs(cfg(over)), (e: unknown) => e instanceof VmConfigError && re.test(e.message), JSON.stringify(over));
  }
});

void test('egress networking: the NIC gets the namespace tap as its peer, same device layout', () => {
  const plain = buildQemuArgs(cfg());
  const a = buildQemuArgs(cfg({ network: { netnsPath: '/run/netns/faascell-abc123-0', tap: 'tap0' } }));
  assert.equal(after(a, '-netdev'), 'tap,id=net0,ifname=tap0,script=no,downscript=no,vnet_hdr=off');
  assert.deepEqual(
    allAfter(a, '-device'),
    allAfter(plain, '-device').map((d) => (d.startsWith('virtio-net-device') ? `${d},netdev=net0` : d)),
  );
  assert.throws(() => buildQemuArgs(cfg({ network: { netnsPath: 'relative', tap: 'tap0' } })), (e: unknown) => e instanceof VmConfigError && /network.netnsPath/.test(e.message));
  assert.throws(() => buildQemuArgs(cfg({ network: { netnsPath: '/run/netns/x', tap: 'tap0,script=/evil' } })), (e: unknown) => e instanceof VmConfigError && /network.tap/.test(e.message));
});

// --- issue 9: the root fs as persistent memory (DAX), free page reporting, TCG cache size
const daxImage = { ...image, rootfsPath: '/img/rootfs.erofs', rootfsFormat: 'erofs' as const, kernelFeatures: ['tickless' as const, 'dax' as const, 'balloon' as const], sizes: { kernelBytes: 1, initrdBytes: 1, rootfsBytes: 100 * 1024 * 1024 } };

void test('pmem root fs: [main RAM][image, read-only][tail RAM for the initrd] as NUMA nodes, memmap= on the image', () => {
  const a = buildQemuArgs(cfg({ image: daxImage }));
  assert.deepEqual(memoryLayout(cfg({ image: daxImage })), { mainMiB: 254, pmem: { addrMiB: 254, sizeMiB: 100 }, tailMiB: 2 });
  // a 3 MiB initrd needs a 4 MiB tail
  const big = { ...daxImage, sizes: { ...daxImage.sizes, initrdBytes: 3 * 1024 * 1024 } };
  assert.deepEqual(memoryLayout(cfg({ image: big })), { mainMiB: 252, pmem: { addrMiB: 252, sizeMiB: 100 }, tailMiB: 4 });
  assert.equal(after(a, '-M'), 'microvm,pit=on,pic=on,rtc=on,pcie=on');
  assert.equal(after(a, '-m'), '356');
  assert.deepEqual(allAfter(a, '-object'), [
    'memory-backend-ram,id=mem,size=254M',
    'memory-backend-file,id=rootfs,size=100M,mem-path=/img/rootfs.erofs,share=on,readonly=on',
    'memory-backend-ram,id=mem-tail,size=2M',
  ]);
  assert.deepEqual(allAfter(a, '-numa'), ['node,nodeid=0,memdev=mem', 'node,nodeid=1,memdev=rootfs', 'node,nodeid=2,memdev=mem-tail']);
  assert.equal(a.includes('-drive'), false);
  assert.equal(after(a, '-append'), `${image.cmdline} memmap=100M!254M faascell.root=pmem`);
  // the balloon comes before the NIC, which stays last (see the networking test)
  assert.deepEqual(allAfter(a, '-device'), ['virtio-serial-device', 'virtserialport,chardev=agent,name=faascell.agent', 'virtio-balloon-device,free-page-reporting=on', 'virtio-net-device,mac=02:fa:a5:00:00:02']);
  // snapshot source and restore: the RAM file is node 0, the device layout is the same
  const src = buildQemuArgs(cfg({ image: daxImage, memory: { kind: 'file', path: '/dev/shm/m', share: true } }));
  const rst = buildQemuArgs(cfg({ image: daxImage }), { incoming: true, memory: { kind: 'file', path: '/dev/shm/m', share: false } });
  assert.equal(allAfter(src, '-object')[0], 'memory-backend-file,id=mem,size=254M,mem-path=/dev/shm/m,share=on');
  // no free page reporting with a RAM file: QEMU 7.2 would punch the reported pages out of the snapshot file
  assert.deepEqual(allAfter(src, '-device'), ['virtio-serial-device', 'virtserialport,chardev=agent,name=faascell.agent', 'virtio-net-device,mac=02:fa:a5:00:00:02']);
  assert.deepEqual(allAfter(rst, '-device'), ['virtio-serial-device', 'virtserialport,chardev=agent,name=faascell.agent', 'virtio-net-device,mac=02:fa:a5:00:00:02']);
  const norm = (x: string[]) => x.filter((v) => v !== '-incoming' && v !== 'defer').map((v) => v.replace('share=off', 'share=on'));
  assert.deepEqual(norm(rst), src);
});

void test('privateMemfdRam: anonymous guest RAM becomes a private memfd (with and without the pmem layout); a RAM file stays as it is', () => {
  const a = buildQemuArgs(cfg({ image: daxImage }), { privateMemfdRam: true });
  assert.equal(allAfter(a, '-object')[0], 'memory-backend-memfd,id=mem,size=254M,share=off');
  assert.ok(allAfter(a, '-device').includes('virtio-balloon-device,free-page-reporting=on'));
  const b = buildQemuArgs(cfg(), { privateMemfdRam: true });
  assert.equal(after(b, '-M'), 'microvm,pit=on,pic=on,rtc=on,memory-backend=mem');
  assert.deepEqual(allAfter(b, '-object'), ['memory-backend-memfd,id=mem,size=256M,share=off']);
  const c = buildQemuArgs(cfg({ image: daxImage, memory: { kind: 'file', path: '/dev/shm/m', share: true } }), { privateMemfdRam: true });
  assert.equal(allAfter(c, '-object')[0], 'memory-backend-file,id=mem,size=254M,mem-path=/dev/shm/m,share=on');
});

void test('pmem root fs falls back to virtio-blk when the layout does not fit', () => {
  const noDax = { ...daxImage, kernelFeatures: ['tickless' as const] };
  for (const c of [
    cfg({ image: noDax }), // kernel without DAX
    cfg({ image: { ...daxImage, rootfsFormat: 'squashfs' } }),
    cfg({ image: daxImage, memoryMiB: 255 }), // odd size: the range would not be 2 MiB aligned
    cfg({ image: daxImage, memoryMiB: 3000 }), // would straddle microvm's 3 GiB split
    cfg({ image: { ...daxImage, sizes: { kernelBytes: 1, initrdBytes: 1, rootfsBytes: 100 * 1024 * 1024 + 4096 } } }),
    cfg({ image: daxImage, memoryMiB: 64 }), // no room for main RAM + tail
  ]) {
    assert.equal(pmemRootfs(c), undefined);
    const a = buildQemuArgs(c);
    assert.equal(after(a, '-drive'), `file=${c.image.rootfsPath},if=none,id=rootfs,format=raw,readonly=on`);
    assert.equal(a.includes('-numa'), false);
    assert.doesNotMatch(after(a, '-append')!, /memmap=/);
  }
  assert.equal(pmemRootfs(cfg({ image: daxImage, memoryMiB: 4096 })), undefined);
  assert.deepEqual(pmemRootfs(cfg({ image: daxImage, memoryMiB: 2972 })), { addrMiB: 2970, sizeMiB: 100 });
});

void test('TCG translation cache size (limits.tcgCodeCacheMiB)', () => {
  assert.equal(after(buildQemuArgs(cfg(), { tcgCodeCacheMiB: 64 }), '-accel'), 'tcg,tb-size=64');
  assert.equal(after(buildQemuArgs(cfg({ accelerator: 'kvm' }), { tcgCodeCacheMiB: 64 }), '-accel'), 'kvm');
  for (const bad of [0, 1.5, 5000]) assert.throws(() => buildQemuArgs(cfg(), { tcgCodeCacheMiB: bad }), VmConfigError);
});
