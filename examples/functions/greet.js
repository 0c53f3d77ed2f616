// A function that needs its configuration: the greeting comes from the environment
// (`faascell deploy greet examples/functions/greet.js --env GREETING=Hello`). Deployed
// without it, its init fails: the README's tour uses that to show what a failed function
// looks like from the command line (the error, the file and line, what it logged).
console.log(`greet: loading, GREETING=${process.env.GREETING ?? '(unset)'}`);
const greeting = process.env.GREETING;
if (!greeting) throw new Error('GREETING is not set (deploy with --env GREETING=Hello)');

exports.main = (params) => ({ message: `${greeting}, ${params.name || 'world'}!` });
