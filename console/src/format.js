// Numbers, money and times as the pages show them.

export const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

export const pct = (part, whole) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : "–");

/** A decimal money string (exact, as the API gives it) with its currency. */
export const money = (amount, currency) => (amount === null || amount === undefined ? "–" : `${amount} ${currency || ""}`.trim());

/** Milliseconds since the epoch as a UTC date and time. */
export const when = (ms) => (ms ? new Date(Number(ms)).toISOString().replace("T", " ").slice(0, 19) + "Z" : "–");

export const ms = (v) => {
  if (v === null || v === undefined) return "–";
  const n = Number(v);
  return `${n >= 10 ? num(Math.round(n)) : n.toFixed(1)} ms`;
};

/** Pico-units (a decimal string) as a float in whole units, for charts only. */
export const picoToUnits = (pico) => Number(pico || 0) / 1e12;

/** Pico-units as the exact decimal (`2424000000` → `0.002424`), as the gateway's x-gateway-cost writes it. */
export function picoDecimal(pico) {
  if (pico === null || pico === undefined || !/^\d+$/.test(String(pico))) return null;
  const digits = String(pico).padStart(13, "0");
  const whole = digits.slice(0, -12).replace(/^0+(?=\d)/, "");
  const frac = digits.slice(-12).replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : whole;
}

export const picoMoney = (pico, currency) => money(picoDecimal(pico), currency);
