import uPlot from 'uplot';
import { useEffect, useRef } from 'preact/hooks';
import { html } from './html.js';
import { formatClock, groupDigits } from './format.js';

// Colour-blind-safe palette (Okabe-Ito), each at least 3:1 against the white plot area.
export const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#7F6000', '#56B4E9', '#000000', '#E69F00'];

/**
 * A time chart (uPlot on a canvas) with what a screen reader needs: the figure is labelled by its caption,
 * the canvas is described by a summary, and the numbers are in a table under "Show the data".
 * `x`: ms since epoch; each series: { label, values (numbers or null), color, dash?, bars? }. `tableX` and
 * `tableXLabel` name the rows of the data table when they differ from the plotted x (bars at bucket middles).
 */
export function TimeChart({ id, caption, summary, x, series, height = 200, padMs = 0, tableX = x, tableXLabel = 'Time' }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const width = Math.max(320, el.clientWidth);
    const opts = {
      width,
      height,
      // Labels only: values appear in the table below, not as the cursor moves.
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      // Bars are drawn centred on their bucket's start: pad the range so the first and last are whole.
      scales: { x: { time: true, range: (_u, min, max) => [min - padMs / 1000, max + padMs / 1000] } },
      axes: [
        { stroke: '#333', grid: { stroke: '#e5e7eb' }, space: 60, values: (_u, ticks) => ticks.map((t) => formatClock(t * 1000)) },
        // The unit is in the caption; a rotated axis label would crowd the tick values.
        { stroke: '#333', grid: { stroke: '#e5e7eb' }, size: 90, values: (_u, ticks) => ticks.map((t) => groupDigits(Math.round(t))) },
      ],
      series: [
        { label: 'time', value: (_u, v) => (v == null ? '' : new Date(v * 1000).toLocaleString()) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          ...(s.dash ? { dash: [6, 4] } : {}),
          ...(s.bars ? { fill: `${s.color}55`, paths: uPlot.paths.bars({ size: [0.7, 40] }), points: { show: false } } : { points: { show: true, size: 5 } }),
          value: (_u, v) => (v == null ? '' : groupDigits(Math.round(v))),
        })),
      ],
    };
    const data = [x.map((t) => t / 1000), ...series.map((s) => s.values)];
    plot.current = new uPlot(opts, data, el);
    // Follows the container's width (a laptop window resized, the sidebar wrapping).
    const observer = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(320, el.clientWidth), height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [JSON.stringify([x, series.map((s) => [s.label, s.values])])]);

  return html`<figure class="chart" aria-labelledby=${`${id}-caption`} data-chart=${id} data-points=${series.reduce((n, s) => n + s.values.filter((v) => v != null && v !== 0).length, 0)}>
    <figcaption id=${`${id}-caption`}>${caption}</figcaption>
    <div class="chart-canvas" ref=${box} role="img" aria-label=${summary}></div>
    <details>
      <summary>Show the data</summary>
      <div class="table-wrap">
        <table>
          <caption class="visually-hidden">${caption}</caption>
          <thead><tr><th scope="col">${tableXLabel}</th>${series.map((s) => html`<th scope="col">${s.label}</th>`)}</tr></thead>
          <tbody>
            ${tableX.map((t, i) => html`<tr><th scope="row">${new Date(t).toLocaleString()}</th>${series.map((s) => html`<td class="num">${s.values[i] == null ? '—' : groupDigits(Math.round(s.values[i]))}</td>`)}</tr>`)}
          </tbody>
        </table>
      </div>
    </details>
  </figure>`;
}
