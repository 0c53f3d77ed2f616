// How deep a JSON value nests (issue 19): 5,000-deep parameters overflowed the host's
// JSON.stringify in the guest channel and crashed the warm VM; an OpenWhisk PUT with deep
// parameters answered 500. The API refuses bodies deeper than api.maxJsonDepth with a 400
// naming the field. The check is iterative: the body it guards against must not overflow it.

export type JsonPath = ReadonlyArray<string | number>;

interface Frame {
  value: object;
  /** the body itself is level 1; each array or object inside it one more */
  depth: number;
  key?: string | number;
  parent?: Frame;
}

/** The path to the first array or object nested deeper than `maxDepth`, or undefined when none is. */
export function tooDeep(value: unknown, maxDepth: number): JsonPath | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const stack: Frame[] = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (f.depth > maxDepth) return pathOf(f);
    if (Array.isArray(f.value)) {
      for (let i = f.value.length - 1; i >= 0; i--) push(stack, f, i, f.value[i]);
    } else {
      const o = f.value as Record<string, unknown>;
      const keys = Object.keys(o);
      for (let i = keys.length - 1; i >= 0; i--) push(stack, f, keys[i]!, o[keys[i]!]);
    }
  }
  return undefined;
}

function push(stack: Frame[], parent: Frame, key: string | number, child: unknown): void {
  if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: parent.depth + 1, key, parent });
}

function pathOf(f: Frame): JsonPath {
  const out: Array<string | number> = [];
  for (let x: Frame | undefined = f; x?.key !== undefined; x = x.parent) out.push(x.key);
  return out.reverse();
}

/** The field a too-deep body is reported under: its top-level member, or `body`. */
export function depthField(p: JsonPath): string {
  return typeof p[0] === 'string' ? p[0] : 'body';
}

/** `parameters[0].value.a…`: the first few steps of a path, for the error message. */
export function formatPath(p: JsonPath, steps = 4): string {
  let s = typeof p[0] === 'number' ? 'body' : '';
  for (const k of p.slice(0, steps)) s += typeof k === 'number' ? `[${k}]` : s === '' ? k : `.${k}`;
  if (p.length > steps) s += '…';
  return s === '' ? 'body' : s;
}
