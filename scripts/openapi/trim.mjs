// Trims GitHub's official OpenAPI description (from @octokit/openapi) to the
// endpoints secbot calls, with every component they reference, and writes
// the fixture the GitHub stand-in validates requests against.
//
//   cd scripts/openapi && npm ci && node trim.mjs
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve("@octokit/openapi/package.json"));
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const spec = JSON.parse(readFileSync(join(pkgDir, "generated", "api.github.com.json"), "utf8"));

// The endpoints secbot uses, by path and method.
const keep = {
  "/repos/{owner}/{repo}": ["get"],
  "/repos/{owner}/{repo}/security-advisories": ["get", "post"],
  "/repos/{owner}/{repo}/security-advisories/{ghsa_id}": ["get", "patch"],
  "/repos/{owner}/{repo}/security-advisories/{ghsa_id}/cve": ["post"],
  "/repos/{owner}/{repo}/security-advisories/{ghsa_id}/forks": ["post"],
  "/orgs/{org}/security-advisories": ["get"],
  "/orgs/{org}/installation": ["get"],
  "/users/{username}": ["get"],
  "/users/{username}/installation": ["get"],
  "/app/installations/{installation_id}/access_tokens": ["post"],
};

const out = {
  openapi: spec.openapi,
  info: { ...spec.info, description: `Trimmed by scripts/openapi/trim.mjs from @octokit/openapi ${pkg.version} to the endpoints secbot uses.` },
  servers: spec.servers,
  paths: {},
  components: {},
};

// Examples are large and validate nothing: leave them out.
const strip = (node) => {
  if (Array.isArray(node)) return node.map(strip);
  if (node && typeof node === "object") {
    const copy = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === "examples" || k === "x-github" || k === "externalDocs") continue;
      copy[k] = strip(v);
    }
    return copy;
  }
  return node;
};

const pending = [];
const seen = new Set();
const collectRefs = (node) => {
  if (Array.isArray(node)) return node.forEach(collectRefs);
  if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string" && !seen.has(v)) {
        seen.add(v);
        pending.push(v);
      } else collectRefs(v);
    }
  }
};

for (const [path, methods] of Object.entries(keep)) {
  const item = spec.paths[path];
  if (!item) throw new Error(`GitHub's description has no path ${path}`);
  out.paths[path] = {};
  for (const method of methods) {
    if (!item[method]) throw new Error(`GitHub's description has no ${method.toUpperCase()} ${path}`);
    out.paths[path][method] = strip(item[method]);
  }
  if (item.parameters) out.paths[path].parameters = strip(item.parameters);
  collectRefs(out.paths[path]);
}

while (pending.length) {
  const ref = pending.pop();
  const parts = ref.replace(/^#\//, "").split("/");
  if (parts[0] !== "components") throw new Error(`unexpected $ref ${ref}`);
  let node = spec;
  for (const p of parts) node = node[p];
  if (node === undefined) throw new Error(`dangling $ref ${ref}`);
  const [, section, name] = parts;
  if (section === "examples") continue;
  out.components[section] ??= {};
  out.components[section][name] = strip(node);
  collectRefs(out.components[section][name]);
}

const target = join(here, "..", "..", "internal", "testenv", "github", "testdata", "github-openapi.json");
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, JSON.stringify(out, null, 1) + "\n");
console.log(`wrote ${target}: ${Object.keys(out.paths).length} paths, ${[...seen].length} components, from @octokit/openapi ${pkg.version}`);
