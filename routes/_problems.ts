/**
 * Problems of route compilation. Messages open with a Gateway API condition reason, so they read
 * like the route status Istio would write: `BackendNotFound: spec.rules[0].backendRefs[1] …`.
 *
 * A route that is invalid as a whole is skipped with an `error` (as mesh/ does for an invalid
 * resource); what only degrades a route (an unresolved backend, a parent that does not attach, a
 * kind conflict) is a `warning`.
 */
import type { Problem } from "../mesh/model.ts";

/** Gateway API route condition reasons used in messages. */
export type RouteReason =
  | "BackendNotFound"
  | "InvalidKind"
  | "RefNotPermitted"
  | "UnsupportedValue"
  | "InvalidFilter"
  | "Conflicted"
  | "NoMatchingParent"
  | "NotAllowedByListeners";

/** Why a route cannot be accepted; `compileRoutes` turns it into an `error` problem. */
export class RouteConfigError extends Error {
  readonly reason: RouteReason;

  /** @param detail What is wrong, starting with the field path */
  constructor(reason: RouteReason, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = "RouteConfigError";
    this.reason = reason;
  }
}

/** Where a problem belongs: the document location and the resource. */
export interface ProblemSite {
  /** `file:line` */
  readonly where: string;
  /** `Kind namespace/name` */
  readonly resource: string;
}

/** Collects problems in the order found. */
export class ProblemList {
  readonly #items: Problem[] = [];
  readonly #seen = new Set<string>();

  /** Records a warning about a site (once: a route compiled twice warns once). */
  warn(site: ProblemSite, reason: RouteReason, detail: string): void {
    this.#add({ severity: "warning", ...site, message: `${reason}: ${detail}` });
  }

  /** Records an error with a ready message. */
  error(site: ProblemSite, message: string): void {
    this.#add({ severity: "error", ...site, message });
  }

  #add(problem: Problem): void {
    const key = `${problem.severity} ${problem.where} ${problem.resource} ${problem.message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.#items.push(problem);
  }

  /** The problems so far, each frozen. */
  list(): Problem[] {
    return this.#items.map((p) => Object.freeze(p));
  }
}

/** Throws a {@link RouteConfigError}. */
export function invalid(reason: RouteReason, detail: string): never {
  throw new RouteConfigError(reason, detail);
}
