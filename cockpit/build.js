#!/usr/bin/env node
// Builds the page into dist/ with esbuild: one bundle (index.js, index.css
// and the fonts PatternFly's CSS names), plus index.html and manifest.json.
// cockpit.js is not bundled: index.html loads Cockpit's own ../base1/cockpit.js.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import * as esbuild from 'esbuild';

const here = path.dirname(new URL(import.meta.url).pathname);
const outdir = path.join(here, 'dist');

fs.rmSync(outdir, { recursive: true, force: true });
const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: ['src/index.jsx'],
    bundle: true,
    minify: true,
    outdir,
    target: ['es2020'],
    loader: { '.js': 'jsx', '.woff': 'file', '.woff2': 'file', '.svg': 'file', '.jpg': 'file', '.png': 'file' },
    assetNames: 'assets/[name]-[hash]',
    define: { 'process.env.NODE_ENV': '"production"' },
    legalComments: 'external',
    logLevel: 'warning',
});
if (result.errors.length > 0)
    process.exit(1);
for (const name of ['index.html', 'manifest.json'])
    fs.copyFileSync(path.join(here, 'src', name), path.join(outdir, name));
console.log(`built ${path.relative(process.cwd(), outdir) || '.'}: ${fs.readdirSync(outdir).join(' ')}`);
