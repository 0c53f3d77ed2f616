export function profileFromBench(r) {
    const functions = {};
    for (const row of r.rows) {
        const restoreMsByTier = {};
        for (const [label, s] of Object.entries(row.restore))
            if (!label.includes('prefetch'))
                restoreMsByTier[label.startsWith('disk') ? 'disk' : label] = s.median;
        functions[row.fn] = {
            coldMs: row.cold.median,
            restoreMs: row.restore.shm?.median,
            restoreMsByTier,
            warmMs: row.warm.median,
            memoryMiB: row.memoryMiB,
            snapshotMiB: row.snapshotMiB,
        };
    }
    const med = (k) => {
        const xs = Object.values(functions).map((f) => Number(f[k])).filter(Number.isFinite).sort((a, b) => a - b);
        return xs[Math.floor(xs.length / 2)] ?? 0;
    };
    return {
        machine: r.machine,
        accelerator: r.accelerator,
        defaults: { coldMs: med('coldMs'), restoreMs: med('restoreMs'), warmMs: med('warmMs'), runMs: 1000, memoryMiB: 256 },
        functions,
        tiers: [
            { name: 'shm', latencyRank: 0, capacityMiB: 4096 },
            { name: 'disk', latencyRank: 1, capacityMiB: 20480 },
        ],
        notes: 'written by `faascell bench snapshots`; the medians of one run on the machine above',
    };
}
//# sourceMappingURL=profile.js.map