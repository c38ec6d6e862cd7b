// Draws the store map and a route as inline SVG (no external assets: the store may be offline).
const SVG = "http://www.w3.org/2000/svg";

// Stop labels are sized to the store, not to the screen: a 60 m supermarket drawn across a
// kiosk gets circles of about 1.5 m, 20-odd pixels, readable at arm's length.
const LABEL_RADIUS_SHARE = 1 / 45;
const MIN_LABEL_RADIUS_M = 1.2;
// Labels keep this much clear space between them (a share of their radius).
const LABEL_GAP_SHARE = 0.25;
// How many rings of places around a stop are tried before a label gives up and overlaps.
const LABEL_RINGS = 6;
// Directions tried on each ring, nearest first: beside, above and below, then diagonals.
const DIRECTIONS = [[1, 0], [-1, 0], [0, -1], [0, 1], [1, -1], [-1, -1], [1, 1], [-1, 1]];

function node(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// Places one label per stop so that no two overlap: at the stop itself when there is room,
// else at the nearest free place around it (drawn with a leader line back to the stop).
// Labels are squares for this test (|dx| or |dy| at least the separation), so their boxes
// never intersect either, whatever their text.
export function placeLabels(stops, radius, bounds) {
  const separation = 2 * radius * (1 + LABEL_GAP_SHARE);
  const placed = [];
  const inside = (x, y) => x - radius >= bounds.minX && x + radius <= bounds.maxX
    && y - radius >= bounds.minY && y + radius <= bounds.maxY;
  const free = (x, y) => inside(x, y) && placed.every((p) =>
    Math.max(Math.abs(p.x - x), Math.abs(p.y - y)) >= separation);
  for (const stop of stops) {
    let spot = null;
    for (let ring = 0; ring <= LABEL_RINGS && !spot; ring += 1) {
      const options = ring === 0 ? [[0, 0]] : DIRECTIONS;
      for (const [dx, dy] of options) {
        const x = stop.x + dx * ring * separation;
        const y = stop.y + dy * ring * separation;
        if (free(x, y)) { spot = { x, y }; break; }
      }
    }
    placed.push({ ...(spot || { x: stop.x, y: stop.y }), stop });
  }
  return placed;
}

export function drawMap(container, map, route) {
  const { min_x, min_y, max_x, max_y } = map.bounds;
  const pad = 2;
  const width = max_x - min_x + 2 * pad;
  const height = max_y - min_y + 2 * pad;
  // Layout coordinates already match SVG's: x to the right, y downwards, back of the store
  // at the top (docs/store-layouts.md), so the entrance is at the bottom as a shopper sees it.
  const svg = node("svg", {
    viewBox: `${min_x - pad} ${min_y - pad} ${width} ${height}`,
    role: "img", "aria-label": route ? "Store map with your route" : "Store map",
  });
  svg.append(node("polygon", { class: "outline",
    points: map.outline.map(([x, y]) => `${x},${y}`).join(" ") }));
  for (const f of map.fixtures) {
    svg.append(node("rect", { class: `fixture ${f.temperature || ""}`, x: f.x, y: f.y,
      width: f.width, height: f.height }));
  }
  for (const door of map.entrances) {
    svg.append(node("circle", { class: "door", cx: door.x, cy: door.y, r: 0.9 }));
  }
  for (const till of map.checkouts) {
    svg.append(node("rect", { class: "checkout", x: till.x - 0.6, y: till.y - 0.6,
      width: 1.2, height: 1.2 }));
  }
  if (route && route.polyline.length > 1) {
    svg.append(node("polyline", { class: "path",
      points: route.polyline.map(([x, y]) => `${x},${y}`).join(" ") }));
    const radius = Math.max(MIN_LABEL_RADIUS_M, width * LABEL_RADIUS_SHARE);
    const bounds = { minX: min_x - pad, minY: min_y - pad, maxX: max_x + pad, maxY: max_y + pad };
    for (const { x, y, stop } of placeLabels(route.stops, radius, bounds)) {
      const group = node("g", { class: "stop", "data-stop": stop.number });
      if (x !== stop.x || y !== stop.y) {
        group.append(node("line", { class: "leader", x1: stop.x, y1: stop.y, x2: x, y2: y }));
        group.append(node("circle", { class: "spot", cx: stop.x, cy: stop.y, r: radius / 3 }));
      }
      group.append(node("circle", { class: "label", cx: x, cy: y, r: radius }));
      const digits = String(stop.number).length;
      group.append(node("text", { x, y, "font-size": radius * (digits > 1 ? 1.05 : 1.3) },
        String(stop.number)));
      svg.append(group);
    }
  }
  container.replaceChildren(svg);
}
