/** `certs ca` and `certs issue`: a dev CA and leaf certificates in Istio's layout. */
import { createCa, issueCert } from "../tunnel/dev_ca.ts";
import { parseFlags, required, UsageError } from "./flags.ts";

/**
 * Runs `certs ca --out DIR [--trust-domain TD]` or
 * `certs issue --ca DIR --identity SPIFFE_ID --out DIR`.
 *
 * @param args Arguments after `certs`
 * @throws UsageError for an unknown subcommand or missing flags
 */
export async function certsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === "ca") {
    const f = parseFlags(rest, { out: { type: "string" }, "trust-domain": { type: "string" } });
    const out = required("out", f.out);
    await createCa(out, { trustDomain: f["trust-domain"] ?? "cluster.local" });
    console.log(`Wrote a dev CA to ${out}`);
    return;
  }
  if (sub === "issue") {
    const f = parseFlags(rest, {
      ca: { type: "string" },
      identity: { type: "string" },
      out: { type: "string" },
      "validity-hours": { type: "string" },
    });
    const hours = f["validity-hours"] ? Number(f["validity-hours"]) : undefined;
    await issueCert(
      required("ca", f.ca),
      required("identity", f.identity),
      required("out", f.out),
      {
        validityHours: hours,
      },
    );
    console.log(`Issued ${f.identity} into ${f.out}`);
    return;
  }
  throw new UsageError(`certs wants "ca" or "issue": got "${sub ?? ""}"`);
}
