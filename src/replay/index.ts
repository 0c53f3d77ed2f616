export * from './replay.js';
export * from './mapping.js';
