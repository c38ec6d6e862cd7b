// Draws the store map and a route as inline SVG (no external assets: the store may be offline).
const SVG = "http://www.w3.org/2000/svg";

function node(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

export function drawMap(container, map, route) {
  const { min_x, min_y, max_x, max_y } = map.bounds;
  const pad = 2;
  // Layout coordinates already match SVG's: x to the right, y downwards, back of the store
  // at the top (docs/store-layouts.md), so the entrance is at the bottom as a shopper sees it.
  const flip = (y) => y;
  const svg = node("svg", {
    viewBox: `${min_x - pad} ${min_y - pad} ${max_x - min_x + 2 * pad} ${max_y - min_y + 2 * pad}`,
    role: "img", "aria-label": "Store map with your route",
  });
  svg.append(node("polygon", { class: "outline",
    points: map.outline.map(([x, y]) => `${x},${flip(y)}`).join(" ") }));
  for (const f of map.fixtures) {
    svg.append(node("rect", { class: `fixture ${f.temperature || ""}`, x: f.x,
      y: flip(f.y), width: f.width, height: f.height }));
  }
  for (const door of map.entrances) {
    svg.append(node("circle", { class: "door", cx: door.x, cy: flip(door.y), r: 0.9 }));
  }
  for (const till of map.checkouts) {
    svg.append(node("rect", { class: "checkout", x: till.x - 0.6, y: flip(till.y) - 0.6,
      width: 1.2, height: 1.2 }));
  }
  if (route && route.polyline.length > 1) {
    svg.append(node("polyline", { class: "path",
      points: route.polyline.map(([x, y]) => `${x},${flip(y)}`).join(" ") }));
    for (const stop of route.stops) {
      const group = node("g", { class: "stop", "data-stop": stop.number });
      group.append(node("circle", { cx: stop.x, cy: flip(stop.y), r: 1.2 }));
      group.append(node("text", { x: stop.x, y: flip(stop.y) }, String(stop.number)));
      svg.append(group);
    }
  }
  container.replaceChildren(svg);
}
