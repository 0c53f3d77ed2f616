// The package version, read from package.json (one place to change it).
import { packageVersion } from './core/project-root.js';

export const VERSION: string = packageVersion();
