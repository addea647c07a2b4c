/**
 * Checks a pipeline file's YAML aliases (`*name`, copies of the node anchored `&name`) before the
 * document becomes data: an alias inside the node it copies makes a structure without end (no
 * JSON value; walking it overflows the stack), and aliases of aliases multiply ("billion laughs":
 * a few lines that expand to billions of nodes). Anchors resolve as YAML says: to the last node
 * with that anchor before the alias.
 */
import { isAlias, isMap, isPair, isSeq, visit } from 'yaml';
import type { Alias, Document, Node } from 'yaml';
import { LIMIT_OPTIONS, formatCount } from './limits.js';

/** A problem with an alias: the alias's offset in the text and what is wrong. */
export interface AliasProblem {
  /** Offset of the alias in the file's text (0-based). */
  readonly offset: number;
  readonly message: string;
}

class Recursive extends Error {
  constructor(readonly alias: Alias) {
    super('recursive alias');
  }
}

/**
 * Checks the aliases of `doc`: none lies inside the node it copies, and all of them together copy
 * at most `maxNodes` nodes (scalars, maps, sequences; an alias inside a copied node counts what it
 * copies).
 * @returns the first problem, in document order, or undefined when there is none.
 */
export function checkAliases(doc: Document, maxNodes: number): AliasProblem | undefined {
  const anchors = new Map<string, Node>();
  const targets = new Map<Alias, Node>();
  const aliases: Alias[] = [];
  visit(doc, {
    // Collections are visited before their items: an alias inside an anchored node resolves to it.
    Node(_key, node) {
      if (isAlias(node)) {
        const target = anchors.get(node.source);
        if (target) {
          targets.set(node, target);
          aliases.push(node);
        }
      } else if (node.anchor) {
        anchors.set(node.anchor, node);
      }
    },
  });
  if (aliases.length === 0) return undefined;
  const sizes = new Map<Node, number>();
  const open = new Set<Node>();
  const size = (node: unknown): number => {
    if (isAlias(node)) {
      const target = targets.get(node);
      if (target && open.has(target)) throw new Recursive(node);
      return target ? size(target) : 1;
    }
    if (isPair(node)) return size(node.key) + size(node.value);
    if (!isMap(node) && !isSeq(node)) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    open.add(node);
    let n = 1;
    for (const item of node.items) n += size(item);
    open.delete(node);
    sizes.set(node, n);
    return n;
  };
  const at = (alias: Alias): number => alias.range?.[0] ?? 0;
  let total = 0;
  for (const alias of aliases) {
    let copied: number;
    try {
      copied = size(alias);
    } catch (err) {
      if (!(err instanceof Recursive)) throw err;
      return {
        offset: at(err.alias),
        message: `YAML alias *${err.alias.source} lies inside the node it copies (&${err.alias.source}): a structure without end`,
      };
    }
    total += copied;
    if (total > maxNodes) {
      return {
        offset: at(alias),
        message:
          `YAML aliases copy more than ${formatCount(maxNodes)} nodes (here *${alias.source} copies ${copied > 1e15 ? 'over 10^15' : formatCount(copied)}), ` +
          `as a "billion laughs" document does; raise the limit with ${LIMIT_OPTIONS.maxAliasNodes}`,
      };
    }
  }
  return undefined;
}
