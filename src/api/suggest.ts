/**
 * "Did you mean" for field names: the known name the operator most likely meant, or undefined.
 * Catches another case (`interfaceSelector`), another separator (`section_name`) and small
 * typos (`prority`).
 */
export function closestName(written: string, known: readonly string[]): string | undefined {
  const wanted = simplify(written);

  const sameLetters = known.find((name) => simplify(name) === wanted);
  if (sameLetters !== undefined) return sameLetters;

  const allowedEdits = wanted.length <= 4 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(wanted, simplify(name), allowedEdits);
    if (distance <= allowedEdits && (best === undefined || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

function simplify(name: string): string {
  return name.toLowerCase().replace(/[-_.\s]/g, '');
}

/**
 * Optimal string alignment distance (Levenshtein plus adjacent swaps), giving up early once
 * every path exceeds `limit`; returns `limit + 1` then.
 */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;

  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = a[i - 1] === b[j - 1] ? 0 : 1;
      let cost = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        cost = Math.min(cost, beforePrevious[j - 2]! + 1);
      }
      current.push(cost);
    }
    if (Math.min(...current) > limit) return limit + 1;
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length]!;
}
