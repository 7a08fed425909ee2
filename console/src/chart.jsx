// A time-series chart (uPlot): one x axis of hours or days, one or more series.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";

const COMPACT = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 6 });
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

/** `x`: seconds since the epoch; `series`: [{label, values}]. */
export function Chart({ title, x, series, unit = "" }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current) return undefined;
    const width = Math.max(280, box.current.clientWidth || 480);
    const plot = new uPlot(
      {
        width,
        height: 180,
        title,
        legend: { show: true },
        scales: { x: { time: true, range: [x[0], x[x.length - 1]] } },
        axes: [{}, { values: (_, ticks) => ticks.map((v) => `${COMPACT.format(v)}${unit}`), size: 56 }],
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true }))],
      },
      [x, ...series.map((s) => s.values)],
      box.current,
    );
    return () => plot.destroy();
  }, [title, x, series, unit]);
  return <div class="chart" ref={box} data-title={title} />;
}
