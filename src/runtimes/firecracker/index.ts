// Firecracker runtime driver (see docs/firecracker.md).
export { FirecrackerDriver, FirecrackerVm, type FirecrackerDriverOptions } from './driver.js';
export { FirecrackerApi, FirecrackerApiError } from './api.js';
