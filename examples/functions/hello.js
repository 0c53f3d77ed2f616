// The smallest FaaSCell function: OpenWhisk's Node.js action contract.
function main(params) {
  return { greeting: `Hello, ${params.name || 'world'}!` };
}
