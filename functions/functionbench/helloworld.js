// FunctionBench-style "helloworld": the smallest possible action (OpenWhisk's
// Node.js contract: main(params) returns a JSON object).
'use strict';

function main(params) {
  const name = typeof params.name === 'string' ? params.name : 'World';
  return { message: `Hello, ${name}!` };
}

exports.main = main;
