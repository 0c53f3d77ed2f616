#!/usr/bin/env node
// Entry point of the `faascell` command. It runs the TypeScript sources through
// tsx's loader, so the command always matches the checked-out tree (no stale
// build), and user policy modules may be TypeScript too.
import { register } from 'tsx/esm/api';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

register();
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
await import(pathToFileURL(path.join(root, 'src', 'cli', 'main.ts')).href);
