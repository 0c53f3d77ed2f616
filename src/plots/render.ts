// Renders a Vega-Lite specification to SVG (vega-lite → vega → SVG string, no
// browser) and to PNG (@resvg/resvg-js, with the system fonts).

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export type PlotFormat = 'svg' | 'png' | 'json';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG of an SVG at `scale` × its size. */
export function svgToPng(svg: string, scale = 2): Buffer {
  const r = new Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } });
  return r.render().asPng();
}

/** Writes OUTBASE.svg / .png / .vl.json (the specification itself); returns the files written. */
export async function writePlot(spec: TopLevelSpec, outBase: string, formats: PlotFormat[] = ['svg', 'png']): Promise<string[]> {
  mkdirSync(path.dirname(outBase), { recursive: true });
  const files: string[] = [];
  if (formats.includes('json')) {
    writeFileSync(`${outBase}.vl.json`, JSON.stringify(spec, null, 2) + '\n');
    files.push(`${outBase}.vl.json`);
  }
  if (formats.includes('svg') || formats.includes('png')) {
    const svg = await renderSvg(spec);
    if (formats.includes('svg')) {
      writeFileSync(`${outBase}.svg`, svg);
      files.push(`${outBase}.svg`);
    }
    if (formats.includes('png')) {
      writeFileSync(`${outBase}.png`, svgToPng(svg));
      files.push(`${outBase}.png`);
    }
  }
  return files;
}
