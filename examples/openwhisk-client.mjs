// OpenWhisk's own npm client (`openwhisk`) against a FaaSCell daemon: create an action,
// invoke it blocking, print the result. Run: node examples/openwhisk-client.mjs
// (FAASCELL_URL and FAASCELL_TOKEN as for the faascell command). docs/openwhisk.md;
// test/e2e/examples.test.ts runs this file as it is.
import openwhisk from 'openwhisk';

const apihost = process.env.FAASCELL_URL || 'http://127.0.0.1:8080';
// the key must be the daemon's token (any uuid before the colon); without a token any key is accepted
const ow = openwhisk({ apihost, api_key: `23bc46b1-71f6-4ed5-8c54-816aa4f8c502:${process.env.FAASCELL_TOKEN ?? 'no-token'}` });

await ow.actions.create({ name: 'hello-ow', action: 'function main(p) { return { payload: "Hello " + p.name } }', overwrite: true });
const result = await ow.actions.invoke({ name: 'hello-ow', blocking: true, result: true, params: { name: 'John' } });
console.log(JSON.stringify(result)); // {"payload":"Hello John"}
