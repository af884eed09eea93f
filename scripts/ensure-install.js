#!/usr/bin/env node
// Installs the npm packages when they are missing or older than package-lock.json, so `npm start`
// and `npm test` work on a fresh clone. Plain Node with no dependencies: it runs before any exist.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const lock = path.join(root, 'package-lock.json');
const installed = path.join(root, 'node_modules', '.package-lock.json');

const mtime = (p) => (fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0);
if (mtime(installed) >= mtime(lock) && mtime(installed) > 0) process.exit(0);

// `npm install`, not `npm ci`: npm 11 writes only this platform's optional binaries (chDB, swc) into
// the lock file and then refuses `npm ci` on it; install still follows the locked versions.
const args = ['install', '--no-audit', '--no-fund'];
process.stderr.write('Installing npm packages...\n');
const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
