// Waits params.ms milliseconds and answers: a function that needs (almost) no CPU,
// the kind FaaSRail's mix of run times is replayed with in the load experiments.
function main(params) {
  const ms = Math.max(0, Math.min(Number(params.ms) || 0, 15 * 60_000));
  return new Promise((resolve) => setTimeout(() => resolve({ slept: ms }), ms));
}
exports.main = main;
